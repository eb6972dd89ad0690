"""Help pages drawn with Rich's core only, so that ``kassa --help`` starts at once.

Typer draws the same page in ``typer.rich_utils``, which first imports Rich's Markdown
(markdown-it, and Pygments for code blocks), Rich's tracebacks and ``attrs``: more than a third
of the time of every ``kassa … --help``. Kassa's help texts are plain paragraphs and `code`,
so this module draws them itself, cell for cell as Typer would (``tests/test_cli_startup.py``
compares the two, colours included). A page with anything more (emphasis, lists, links, help
panels, deprecations, an epilog, environment variables) is left to Typer: ``print_help``
answers False, having printed nothing.

Only the commands' ``format_help`` imports this module, so no other command loads Rich."""

from __future__ import annotations

import inspect
import os
import re

from rich.align import Align
from rich.columns import Columns
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.emoji import Emoji
from rich.highlighter import RegexHighlighter
from rich.padding import Padding
from rich.panel import Panel
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from rich.theme import Theme
from typer import _click
from typer.core import HAS_RICH, TyperArgument, TyperGroup, TyperOption

# What Markdown would draw as more than paragraphs and `code`: emphasis, links, HTML, escapes,
# entities, strikethrough, tables, headings, Click's \b; an underscore that is not inside a
# word; a hard line break; list items, setext underlines, block quotes and indented code.
_OTHER_MARKDOWN = re.compile(
    r"[*\[\]<>\\&~|#!`\b]"
    r"|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])"
    r"| {2,}$"
    r"|^ {0,3}(?:[-+=]|\d{1,9}[.)])(?:\s|[-=]*$)"
    r"|^ {4}",
    re.MULTILINE,
)
_CODE = re.compile(r"`([^`]+)`")
_EMOJI_CODE = re.compile(r":\S*?:")  # Rich's own test for an emoji code


class _OptionHighlighter(RegexHighlighter):
    highlights = [  # noqa: RUF012 - Rich declares it a list
        r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
        r"(?P<types>\<[^\>]+\>)",
        r"(?P<usage>Usage: )",
    ]


class _NegativeHighlighter(RegexHighlighter):
    highlights = [  # noqa: RUF012 - Rich declares it a list
        r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
    ]


class _TypesHighlighter(RegexHighlighter):
    highlights = [  # noqa: RUF012 - Rich declares it a list
        r"^(?P<types_sep>(\[|<))",
        r"(?P<types_sep>\|)",
        r"(?P<types_sep>(\]|>))(\.\.\.)?$",
    ]


_highlight = _OptionHighlighter()
_highlight_negative = _NegativeHighlighter()
_highlight_types = _TypesHighlighter()


def print_help(command: _click.Command, ctx: _click.Context) -> bool:
    """Print ``command``'s help page as Typer would; False, having printed nothing, when the
    page needs more than this module draws."""
    page = _Page.of(command, ctx)
    if page is None:
        return False
    page.print()
    return True


def _markdown_source(text: str) -> str:
    """``text`` as Typer hands it to Markdown: dedented, emoji codes replaced."""
    text = inspect.cleandoc(text)
    return Emoji.replace(text) if _EMOJI_CODE.search(text) else text


def _shows_envvar(param: _click.Parameter, ctx: _click.Context) -> bool:
    automatic = getattr(param, "allow_from_autoenv", False) and ctx.auto_envvar_prefix
    return bool(getattr(param, "show_envvar", False) and (param.envvar or automatic))


def _plain(text: str) -> bool:
    """Whether Markdown draws ``text`` as paragraphs and `code` only."""
    return _OTHER_MARKDOWN.search(_CODE.sub("", _markdown_source(text))) is None


class _Paragraphs:
    """What Rich's ``Markdown`` draws for paragraphs and `code`: each paragraph one Text, its
    lines joined by spaces, code in the theme's ``markdown.code``, a blank line between.
    Like ``Markdown`` it has no ``__rich_measure__``, so ``Columns`` gives it a row of its own."""

    def __init__(self, text: str, style: str = "") -> None:
        self.source = _markdown_source(text)
        self.style = style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        base = console.get_style(self.style, default="none")
        code = base + console.get_style("markdown.code", default="none")
        lines = "\n".join(line.strip() for line in self.source.splitlines())
        paragraphs = [block.strip("\n") for block in re.split(r"\n{2,}", lines)]
        for number, paragraph in enumerate(p for p in paragraphs if p):
            if number:
                yield Segment.line()
            yield from console.render(_paragraph(paragraph, base, code), options)


def _paragraph(paragraph: str, base: Style, code: Style) -> Text:
    """One paragraph, in the pieces Markdown appends: each line's text, a space for each line
    break, each code span (its line breaks as spaces)."""
    text = Text(justify="left")
    for number, piece in enumerate(_CODE.split(paragraph)):
        if number % 2:
            piece = piece.replace("\n", " ")
            if piece.startswith(" ") and piece.endswith(" ") and piece.strip():
                piece = piece[1:-1]
            text.append(piece, code)
            continue
        for line_number, line in enumerate(piece.split("\n")):
            if line_number:
                text.append(" ", base)
            if line:
                text.append(line, base)
    return text


class _Page:
    """One help page, checked whole before anything is printed."""

    def __init__(self, command: _click.Command, ctx: _click.Context) -> None:
        self.command = command
        self.ctx = ctx
        self.arguments: list[TyperArgument] = []
        self.options: list[TyperOption] = []
        self.commands: list[_click.Command] = []

    @classmethod
    def of(cls, command: _click.Command, ctx: _click.Context) -> _Page | None:
        if not HAS_RICH or getattr(command, "rich_markup_mode", None) != "markdown":
            return None
        if command.deprecated or command.epilog:
            return None
        page = cls(command, ctx)
        texts = [command.help or ""]
        for param in command.get_params(ctx):
            if getattr(param, "hidden", False):
                continue
            if getattr(param, "rich_help_panel", None) or _shows_envvar(param, ctx):
                return None
            if isinstance(param, TyperArgument):
                page.arguments.append(param)
            elif isinstance(param, TyperOption):
                page.options.append(param)
            texts.append(getattr(param, "help", None) or "")
        if isinstance(command, TyperGroup):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is None or sub.hidden:
                    continue
                if sub.deprecated or getattr(sub, "rich_help_panel", None):
                    return None
                page.commands.append(sub)
                texts.append(sub.short_help or sub.help or "")
        return page if all(_plain(text) for text in texts) else None

    def print(self) -> None:
        console = _console()
        console.print(Padding(_highlight(self.command.get_usage(self.ctx)), 1), style="bold")
        if self.command.help:
            text = inspect.cleandoc(self.command.help).partition("\f")[0]
            first, *rest = text.split("\n\n")
            parts: list[RenderableType] = [_Paragraphs(first.strip())]
            if rest:
                parts += [Text(""), _Paragraphs("\n\n".join(rest), style="dim")]
            console.print(Padding(Align(Group(*parts), pad=False), (0, 1, 1, 1)))
        if self.arguments:
            console.print(self._parameters("Arguments", self.arguments))
        if self.options:
            console.print(self._parameters("Options", self.options))
        if self.commands:
            console.print(self._commands())

    def _parameters(
        self, title: str, params: list[TyperArgument] | list[TyperOption]
    ) -> RenderableType:
        table = _table(highlight=True)
        marks = any(param.required for param in params)
        for param in params:
            name = param._rich_display_name() if isinstance(param, TyperArgument) else None
            types = Text(style="bold yellow", overflow="fold")
            shown_type = param.display_type_rich(ctx=self.ctx)
            if shown_type is not None:
                types.append(shown_type)
            number_range = param._get_number_range_help_str()
            if number_range:
                types.append(f" [{number_range}]")
            row: list[RenderableType] = [
                _highlight(",".join(opt for opt in param.opts if "--" in opt)),
                _highlight(",".join(name or opt for opt in param.opts if "--" not in opt)),
                _highlight_negative(",".join(o for o in param.secondary_opts if "--" in o)),
                _highlight_negative(",".join(o for o in param.secondary_opts if "--" not in o)),
                _highlight_types(types),
                self._parameter_help(param),
            ]
            if marks:
                row.insert(0, Text("*", style="red") if param.required else "")
            table.add_row(*row)
        return Panel(table, border_style="dim", title=title, title_align="left")

    def _parameter_help(self, param: TyperArgument | TyperOption) -> RenderableType:
        items: list[RenderableType] = []
        if param.help:  # Typer joins an option's paragraphs into one
            items.append(_Paragraphs("\n".join(param.help.split("\n\n")).strip()))
        default = param._extract_default_help_str(ctx=self.ctx)
        text_default = isinstance(param.show_default, str)
        if text_default or (default is not None and (param.show_default or self.ctx.show_default)):
            shown = param._get_default_string(
                ctx=self.ctx, show_default_is_str=text_default, default_value=default
            )
            if shown:
                items.append(Text(f"[default: {shown}]", style="dim"))
        if param.required:
            items.append(Text("[required]", style="dim red"))
        return Columns(items)

    def _commands(self) -> RenderableType:
        table = _table(highlight=False)
        width = max(len(command.name or "") for command in self.commands)
        table.add_column(style="bold cyan", no_wrap=True, width=width)
        table.add_column("Description", justify="left", no_wrap=False, ratio=10)
        for command in self.commands:
            first = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
            table.add_row(Text(command.name or ""), _Paragraphs(first.replace("\n", " ").strip()))
        return Panel(table, border_style="dim", title="Commands", title_align="left")


def _table(*, highlight: bool) -> Table:
    return Table(
        highlight=highlight,
        show_header=False,
        expand=True,
        box=None,
        show_lines=False,
        leading=0,
        pad_edge=False,
        padding=(0, 1),
    )


def _console() -> Console:
    """Typer's console for help: its theme and highlighter, colour where the terminal (or
    FORCE_COLOR, PY_COLORS, GITHUB_ACTIONS) asks for it, and TERMINAL_WIDTH if set."""
    forced = any(os.getenv(name) for name in ("GITHUB_ACTIONS", "FORCE_COLOR", "PY_COLORS"))
    width = os.getenv("TERMINAL_WIDTH")
    theme = Theme(
        {
            "option": "bold cyan",
            "switch": "bold green",
            "negative_option": "bold magenta",
            "negative_switch": "bold red",
            "types": "bold yellow",
            "types_sep": "dim",
            "usage": "yellow",
        }
    )
    return Console(
        theme=theme,
        highlighter=_highlight,
        color_system="auto",
        force_terminal=False if os.getenv("_TYPER_FORCE_DISABLE_TERMINAL") else forced or None,
        width=int(width) if width else None,
    )
