"""The GraphQL layer: canonical types (``types``), the roots (``roots``), the document analysis
and its caches (``document``), one module per schema extension (``extensions/``), the schema
(``schema``), the catalogue the access policy decides on (``catalogue``), the presenters that
apply masks (``present``) and the per-request context (``context``)."""
