"""eg's pytest plugin gives the fixtures (``gateway_factory``, ``kernel_spec_dirs``...) and the
resource-manager conformance suite."""

pytest_plugins = ["eg_core.testing"]
