import pytest

from adapter.store.async_store import AsyncStore
from adapter.store.factory import open_store


@pytest.fixture
async def astore():
    store = AsyncStore(open_store("memory://"))
    yield store
    await store.close()
