"""Tensor arithmetic both the audit and the comparison stand on: flattening outputs, tolerances
per dtype, difference metrics, the devices (and TF32 setting) runs happen on, and the runtime
packages imported without their telemetry."""
