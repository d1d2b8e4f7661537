"""Published evaluation protocols (BALROG's), their figures computed as the protocol does, and
the published rows to set beside them."""
