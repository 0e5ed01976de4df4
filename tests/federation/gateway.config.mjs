// Hive Gateway for the federation tests: the user's credentials and stated purpose reach every
// subgraph, so the hub decides and audits each entity fetch for the user who asked.
import { defineConfig } from "@graphql-hive/gateway";

const FORWARDED = ["authorization", "x-purpose", "x-case-number"];

export const gatewayConfig = defineConfig({
  propagateHeaders: {
    fromClientToSubgraphs({ request }) {
      const headers = {};
      for (const name of FORWARDED) {
        const value = request.headers.get(name);
        if (value !== null) headers[name] = value;
      }
      return headers;
    },
  },
});
