"""Read-only views of a machine in the kernel's own formats."""
