"""The hub's strawberry schema extensions, one per module, in the order ``build_schema`` runs
them: the document caches (``caches``), the cost limit (``limits``), the purpose check
(``purpose``) and the response shaper (``shaper``)."""
