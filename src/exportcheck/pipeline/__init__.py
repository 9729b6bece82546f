"""The commands as library calls: inspect, validate, compare and audit, in and across processes."""
