"""Pure transforms from a validated Stack to other tools' formats: files out, no engine."""
