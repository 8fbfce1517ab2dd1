"""Before a leak: public values that look like credentials (scanning), and secrets that are
old, unused or shadowed everywhere (report). docs/forensics.md."""
