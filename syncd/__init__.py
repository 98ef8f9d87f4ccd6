"""syncd: pulls customers and invoices from PSA and accounting systems into one store, and pushes
the payments customers made back to them exactly once."""

__version__ = "0.1.0"
