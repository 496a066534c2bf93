"""I5 over generated histories, on the in-memory repository (tests/integration repeats it on DynamoDB)."""

from hypothesis import settings

from tests.unit.fakes import MemoryRepository
from tests.unit.switch_machine import SwitchMachine


class MemorySwitchMachine(SwitchMachine):
    make_repository = MemoryRepository
    pending_events = staticmethod(lambda repo, location_id: repo.read_pending((location_id, "LOCATION"))[0])


MemorySwitchMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestSwitchOnMemory = MemorySwitchMachine.TestCase
