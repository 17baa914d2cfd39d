"""What each user subscribed to (area × class × kind), stored per user; a user without a stored
subscription hears their role's default (:meth:`gridcore.events.Subscription.default_for`)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from gridcore.errors import NotFound
from gridcore.events import Subscription
from gridcore.security.access import Role


def get_subscription(engine: Engine, username: str, role: Role | None) -> tuple[Subscription,
                                                                                 bool]:
    """The user's subscription and whether it is stored (False: the role's default)."""
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT kinds, areas, categories FROM event_subscription WHERE username = :u"),
            {"u": username}).first()
    if row is None:
        return Subscription.default_for(role), False
    return Subscription.of(row.kinds, row.areas, row.categories), True


def set_subscription(engine: Engine, username: str, sub: Subscription) -> None:
    with engine.begin() as conn:
        if conn.execute(text("SELECT 1 FROM app_user WHERE username = :u"),
                        {"u": username}).first() is None:
            raise NotFound(f"no user {username!r}: subscriptions are kept for signed-in users",
                           username=username)
        conn.execute(text(
            "INSERT INTO event_subscription (username, kinds, areas, categories, updated_at) "
            "VALUES (:u, :k, :a, :c, now()) ON CONFLICT (username) DO UPDATE SET "
            "kinds = :k, areas = :a, categories = :c, updated_at = now()"),
            {"u": username, "k": sorted(k.value for k in sub.kinds), "a": list(sub.areas),
             "c": list(sub.categories)})


def reset_subscription(engine: Engine, username: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM event_subscription WHERE username = :u"),
                     {"u": username})
