"""One way in for the hub's commands: checked once, refused and audited once, obeyed by name.

Why one: whichever part of the node a command is for (the role, the door's access list, a config
update, live view), a refused one must get the same reply and the same ``command.refused`` audit
event. When each part checked for itself the copies began to drift, so the parts now only
register handlers by command name, and only this module talks to the guard (edge/link/commands.py).
A command whose args do not fit its model in the contract (``edge.protocol.COMMAND_ARGS``: declared
fields typed, required ones present, more allowed) is refused here with the field that is wrong.

A handler that works the reader or the network is a coroutine function: ``dispatch`` (the agent)
runs it as a task that sends its own reply; ``handle`` awaits it (tests and benches).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from edge.link.commands import CommandGuard, CommandRefused
from edge.protocol import Command, Reply, validation_reason

log = logging.getLogger(__name__)

Handler = Callable[[Command], Reply | Awaitable[Reply]]
Audit = Callable[[str, dict[str, Any]], Any]


class CommandDispatcher:
    def __init__(self, guard: CommandGuard, *, audit: Audit,
                 send_reply: Callable[[Reply], Any] = lambda reply: None) -> None:
        self.guard = guard
        self.audit = audit  # the role's emit: the refusal is an event in the audit class
        self.send_reply = send_reply
        self._handlers: dict[str, Handler] = {}
        self._unknown: Callable[[Command], Reply] = lambda cmd: Reply(
            command_id=cmd.id, ok=False, detail=f"{cmd.name} is not something this node does")
        self._tasks: set[asyncio.Task[None]] = set()

    def register(self, handler: Handler, *names: str) -> None:
        for name in names:
            self._handlers[name] = handler

    def otherwise(self, handler: Callable[[Command], Reply]) -> None:
        """What a valid command no part of this node handles gets (the role says what it is)."""
        self._unknown = handler

    def check(self, payload: bytes) -> Command | Reply | None:
        """The command if it may be obeyed; else the refusal to send (None: nobody to answer)."""
        try:
            checked = self.guard.check(payload)
            try:
                checked.typed_args()  # the contract's model for this name (edge/protocol.py COMMAND_ARGS)
            except ValidationError as bad:
                raise CommandRefused(validation_reason(bad, "args do not fit the contract: args."), checked) from None
            return checked
        except CommandRefused as exc:
            cmd = exc.command
            cmd_id = cmd.id if cmd else "?"
            log.warning("refused command %s: %s", cmd_id, exc.reason)
            self.audit("command.refused", {"command_id": cmd_id, "reason": exc.reason,
                                           "name": cmd.name if cmd else None,
                                           "operator": cmd.operator if cmd else None})
            if cmd is None or cmd.node != self.guard.node_id:
                return None  # nothing trustworthy to reply to
            return Reply(command_id=cmd_id, ok=False, detail=f"refused: {exc.reason}")

    def _obey(self, cmd: Command) -> Reply | Awaitable[Reply]:
        return self._handlers.get(cmd.name, self._unknown)(cmd)

    def dispatch(self, payload: bytes) -> Reply | None:
        """Quick commands are answered at once; slow ones run as a task that sends its own reply."""
        checked = self.check(payload)
        if not isinstance(checked, Command):
            return checked
        answer = self._obey(checked)
        if not inspect.isawaitable(answer):
            return answer
        task = asyncio.get_running_loop().create_task(self._reply_later(answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    async def _reply_later(self, answer: Awaitable[Reply]) -> None:
        self.send_reply(await answer)

    async def handle(self, payload: bytes) -> Reply | None:
        """Check and obey one command, awaiting a slow handler's reply."""
        checked = self.check(payload)
        if not isinstance(checked, Command):
            return checked
        answer = self._obey(checked)
        return await answer if inspect.isawaitable(answer) else answer

    def close(self) -> None:
        """Cancel slow commands still running (at stop: the door's relay is released next)."""
        for task in list(self._tasks):
            task.cancel()
