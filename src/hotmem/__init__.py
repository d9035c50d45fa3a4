"""hotmem: Linux memory hotplug simulator."""
