// Compose Federation v2 subgraphs into a supergraph with @theguild/federation-composition.
//
//   node compose.mjs <supergraph.graphql> <name>=<url>=<sdl file> ...
//
// Exits 1 and prints every composition error when the subgraphs do not compose.
import { readFileSync, writeFileSync } from "node:fs";
import { composeServices } from "@theguild/federation-composition";
import { parse } from "graphql";

const [out, ...specs] = process.argv.slice(2);
if (!out || specs.length === 0) {
  console.error("usage: node compose.mjs <supergraph.graphql> <name>=<url>=<sdl file> ...");
  process.exit(2);
}
const services = specs.map((spec) => {
  const [name, url, file] = spec.split("=");
  return { name, url, typeDefs: parse(readFileSync(file, "utf8")) };
});
const result = composeServices(services);
if (result.errors && result.errors.length > 0) {
  for (const error of result.errors) console.error(`composition: ${error.message}`);
  process.exit(1);
}
writeFileSync(out, result.supergraphSdl);
