"""Built-in connectors, one package per system; each registers through ``syncd.connectors``."""
