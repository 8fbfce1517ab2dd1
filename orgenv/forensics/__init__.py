"""After a leak: what each resolution delivered (manifests), the exact environment it
delivered (replay) and everyone who received a variable (exposure). docs/forensics.md."""
