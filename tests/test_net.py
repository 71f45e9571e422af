"""net: what a connection leaves behind once it is over."""

from __future__ import annotations

import asyncio
import gc

from pochta.net import Listener, Stream, _StreamProtocol


async def _greet(stream: Stream) -> None:
    stream.write(b"hi\r\n")
    await stream.drain()


async def test_a_finished_connection_is_freed_without_the_garbage_collector():
    # Each connection used to be a reference cycle (a closure on its protocol), left for the collector.
    listener = Listener("test", _greet, idle_timeout=5, max_per_ip=5, max_total=5, refuse=lambda stream, why: b"")
    await listener.bind(["127.0.0.1:0"])
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.ports[0])
        assert await reader.read() == b"hi\r\n"
        writer.close()
        await writer.wait_closed()
        await listener.finish(5)
        gc.collect()
        assert not [item for item in gc.garbage if isinstance(item, _StreamProtocol)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        listener.stop_accepting()
