"""The core's and the bundled plugins' tests use eg's pytest plugin (it is opt-in)."""

from importlib.metadata import entry_points

# An environment installed before eg_core.testing became opt-in still loads it as an entry
# point; declaring it again would register it twice.
_loaded_by_entry_point = any(ep.value == "eg_core.testing" for ep in entry_points(group="pytest11"))
pytest_plugins = [] if _loaded_by_entry_point else ["eg_core.testing"]
