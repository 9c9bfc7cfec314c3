"""The Slack adapter (slack-bolt on Socket Mode or the HTTP Events API).

Modules: `adapter` (lifecycle, transports, event listeners), `normalise` (pure payload →
event functions), `commands` (slash commands, the "Edit image" shortcut and modal),
`outbox` and `stream` (delivering replies, streamed answers), `abilities` (what each channel
allows: chat streaming, the status line), `errors` (Slack failures for the logs),
`files` (downloads with the bot token, uploads), `manifest` (`python -m bot manifest slack`).
"""

from adapters.slack.adapter import SlackAdapter

__all__ = ["SlackAdapter"]
