"""The process's event hub: the LISTEN thread (``layers.notifications.listener``) hands it every
committed event; it passes each to the open streams (``GET /events``) whose listener may see
it. One hub per server process; NOTIFY makes every process's hub get every event, whichever
process (or machine) committed it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from gridcore.events import CaseEvent, Listener

STOP = object()  # the server is stopping: streams end
OVERFLOW = object()  # a stream fell too far behind: it ends, the page reconnects and replays


@dataclass(eq=False)
class Stream:
    listener: Listener
    queue: asyncio.Queue[object] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    overflowed: bool = False

    def put(self, item: object) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue.get_nowait()
            self.queue.put_nowait(OVERFLOW)


class EventHub:
    def __init__(self, loop: asyncio.AbstractEventLoop, remember: int = 5000) -> None:
        self.loop = loop
        self.streams: set[Stream] = set()
        self.woken = asyncio.Event()  # set on every batch: the webhook loop wakes up
        # (id, time): a range NOTIFY may repeat an event; ids alone could repeat after the
        # outbox was emptied (a restore, the test suite's truncation).
        self._seen: OrderedDict[tuple[int, float], None] = OrderedDict()
        self._remember = remember
        self.last_id = 0

    def publish_threadsafe(self, events: Sequence[CaseEvent]) -> None:
        """From the listener thread."""
        self.loop.call_soon_threadsafe(self.publish, list(events))

    def publish(self, events: Sequence[CaseEvent]) -> None:
        fresh = []
        for event in events:
            key = (event.id or 0, event.at.timestamp())
            if event.id is None or key in self._seen:
                continue  # a range NOTIFY may repeat an event another NOTIFY brought
            self._seen[key] = None
            fresh.append(event)
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        if not fresh:
            return
        self.last_id = max(self.last_id, *(e.id or 0 for e in fresh))
        for stream in list(self.streams):
            for event in fresh:
                if stream.listener.receives(event):
                    stream.put(event)
        self.woken.set()

    def wanted(self) -> bool:
        """Whether the events themselves are read here (an open stream): from any thread."""
        return bool(self.streams)

    def noticed_threadsafe(self, last_id: int) -> None:
        """From the listener thread: events up to ``last_id`` committed, nobody reads them."""
        self.loop.call_soon_threadsafe(self.noticed, last_id)

    def noticed(self, last_id: int) -> None:
        self.last_id = max(self.last_id, last_id)
        self.woken.set()

    def open(self, listener: Listener) -> Stream:
        stream = Stream(listener)
        self.streams.add(stream)
        return stream

    def close(self, stream: Stream) -> None:
        self.streams.discard(stream)

    def stop(self) -> None:
        for stream in list(self.streams):
            stream.put(STOP)
