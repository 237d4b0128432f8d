"""Layer 3: served OpenAPI document, handlers, validation and serialisation."""
