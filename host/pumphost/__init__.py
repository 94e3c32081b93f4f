"""pumphost: the host side of itpump (client library, protocol I/O over pyserial, the `itpump`
CLI and prescription files)."""
