"""hub: a GraphQL federated query hub for lawful cross-agency record sharing."""
