"""I5 over generated histories, on the in-memory repository (tests/integration repeats it on DynamoDB)."""

from hypothesis import settings

from inventory.models import OutboxEvent
from tests.unit.fakes import MemoryRepository, location_item
from tests.unit.switch_machine import SwitchMachine


def location_events(repo: MemoryRepository, location_id: str) -> list[OutboxEvent]:
    key = location_item(location_id)
    return repo.read_pending([key])[key][0]


class MemorySwitchMachine(SwitchMachine):
    make_repository = MemoryRepository
    pending_events = staticmethod(location_events)


MemorySwitchMachine.TestCase.settings = settings(max_examples=120, stateful_step_count=40, deadline=None)
TestSwitchOnMemory = MemorySwitchMachine.TestCase
