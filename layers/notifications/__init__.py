"""Notifications in storage: the event outbox (``outbox``: written by intake, the lifecycle and
the supervision sweep in the same transaction as the change), the per-process LISTEN
connection that turns NOTIFYs into events (``listener``), what each user subscribed to
(``subscriptions``) and outgoing webhooks with their delivery log (``webhooks``).

Below ``layers.cases`` (which writes events) and above ``layers.security``; may import
``layers.security``, ``layers.db``, ``layers.schema`` and ``gridcore``.
"""
