"""Channels (受理渠道): every way a report comes in besides a phone's point — addresses and
geocoding (``geocoder``), IoT devices and their alarms (``devices``, ``alarms``, ``mqtt``) —
each filing through the one intake service (``layers.cases.intake``) with its own identity."""
