"""A ``dynamic=`` layout written as text (a command-line option), evaluated
in bounded time and memory.

The layouts are Python literals plus ``dict(...)`` and the arithmetic that
writes a layout, e.g. ``"dict(conv_cfg=dict(type='ODConv2d',
reduction=1/16), stages=(False,) * 2 + (True,) * 2)"``. ``eval`` would also
compute ``9 ** 9 ** 9`` (an integer of 370 million digits, minutes of CPU
before any check runs) or build ``(True,) * 10 ** 10``; here every value
stays within :data:`MAX_ITEMS` items and :data:`MAX_INT_BITS` bits, checked
before it is computed, and nothing but literals, ``dict`` calls and
arithmetic is evaluated.
"""
import ast
import math
import operator
from typing import Any, Callable, Dict, Tuple, Type

#: The longest tuple, list or string a layout literal may build.
MAX_ITEMS = 10_000
#: The largest integer a layout literal may build, in bits (about 1233
#: decimal digits).
MAX_INT_BITS = 4096

_NUMBER = (int, float, complex)
_SEQUENCE = (tuple, list, str)
_CONSTANTS = (int, float, complex, str, bool, type(None))
_NAMES = {'True': True, 'False': False, 'None': None}

_ARITHMETIC: Dict[Type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_SYMBOLS = {
    ast.Add: '+',
    ast.Sub: '-',
    ast.Mult: '*',
    ast.Div: '/',
    ast.FloorDiv: '//',
    ast.Mod: '%',
    ast.Pow: '**',
}


class LayoutLiteralError(ValueError):
    """A refused layout literal; ``keys`` lead to the refused part
    (outermost first), and the message starts with them (``a.b: ...``)."""

    def __init__(self, message: str, keys: Tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.keys = keys

    def __str__(self) -> str:
        where = '.'.join(self.keys)
        return f'{where}: {self.message}' if where else self.message


class _Evaluator:
    """Evaluates the nodes of one expression (see
    :func:`evaluate_layout_literal`)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def source(self, node: ast.AST) -> str:
        """The text of ``node``, for messages."""
        return ast.get_source_segment(self.text, node) or ast.dump(node)

    def __call__(self, node: ast.AST) -> Any:
        method = getattr(self, f'visit_{type(node).__name__}', None)
        if method is None:
            raise LayoutLiteralError(
                f'{self.source(node)!r}: a layout is made of '
                'literals, dict(...) and arithmetic '
                f'(+ - * / // % **); {type(node).__name__} '
                'is not allowed')
        return self.bounded(node, method(node))

    def bounded(self, node: ast.AST, value: Any) -> Any:
        """``value``, if within the bounds."""
        if isinstance(value, _SEQUENCE) and len(value) > MAX_ITEMS:
            raise LayoutLiteralError(
                f'{self.source(node)!r} has {len(value)} items; a layout '
                f'literal builds at most {MAX_ITEMS}')
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise LayoutLiteralError(
                f'{self.source(node)!r} has more than '
                f'{MAX_INT_BITS} bits; integers in a layout '
                f'literal stay within +-2**{MAX_INT_BITS}')
        return value

    def visit_Expression(self, node: ast.Expression) -> Any:
        return self(node.body)

    def visit_Constant(self, node: ast.Constant) -> Any:
        if not isinstance(node.value, _CONSTANTS):
            raise LayoutLiteralError(
                f'{self.source(node)!r}: a layout takes numbers, '
                'strings, True, False and None')
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id not in _NAMES:
            raise LayoutLiteralError(
                f'name {node.id!r} is not allowed (only True, '
                'False, None and dict(...))')
        return _NAMES[node.id]

    def visit_Tuple(self, node: ast.Tuple) -> tuple:
        return tuple(self(e) for e in node.elts)

    def visit_List(self, node: ast.List) -> list:
        return [self(e) for e in node.elts]

    def visit_Set(self, node: ast.Set) -> set:
        return {self(e) for e in node.elts}

    def keyed(self, key: Any, node: ast.AST) -> Any:
        """The value of ``node``, the value of ``key``; an error names the
        key."""
        try:
            return self(node)
        except LayoutLiteralError as err:
            raise LayoutLiteralError(err.message,
                                     (str(key), ) + err.keys) from None
        except ValueError as err:
            raise LayoutLiteralError(str(err), (str(key), )) from None

    def visit_Dict(self, node: ast.Dict) -> dict:
        if any(key is None for key in node.keys):
            raise LayoutLiteralError(
                f'{self.source(node)!r}: ** is not allowed')
        result = {}
        for key_node, value_node in zip(node.keys, node.values):
            key = self(key_node)
            result[key] = self.keyed(key, value_node)
        return result

    def visit_Call(self, node: ast.Call) -> dict:
        if not (isinstance(node.func, ast.Name) and node.func.id == 'dict'):
            raise LayoutLiteralError(
                f'{self.source(node)!r}: the only call allowed '
                'is dict(...)')
        if len(node.args) > 1 or any(
                isinstance(a, ast.Starred)
                for a in node.args) or any(k.arg is None
                                           for k in node.keywords):
            raise LayoutLiteralError(f'{self.source(node)!r}: dict(...) takes '
                                     'keywords (and at most one dict)')
        result = dict(*[self(a) for a in node.args])
        for keyword in node.keywords:
            result[keyword.arg] = self.keyed(keyword.arg, keyword.value)
        return result

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self(node.operand)
        if not isinstance(node.op, (ast.UAdd, ast.USub)) or \
                not isinstance(value, _NUMBER):
            raise LayoutLiteralError(
                f'{self.source(node)!r}: only + and - apply to '
                'a single number')
        return +value if isinstance(node.op, ast.UAdd) else -value

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        op = type(node.op)
        if op not in _ARITHMETIC:
            raise LayoutLiteralError(
                f'{self.source(node)!r}: the operators allowed '
                f'are {" ".join(_SYMBOLS.values())}')
        left, right = self(node.left), self(node.right)
        numbers = isinstance(left, _NUMBER) and isinstance(right, _NUMBER)
        if op is ast.Mult and not numbers:
            self.check_repeat(node, left, right)
        elif op is ast.Pow and numbers:
            self.check_power(node, left, right)
        elif op is not ast.Add and not numbers:
            raise LayoutLiteralError(
                f'{self.source(node)!r}: {_SYMBOLS[op]} applies '
                'to numbers only')
        try:
            return _ARITHMETIC[op](left, right)
        except (ArithmeticError, TypeError) as err:
            raise LayoutLiteralError(f'{self.source(node)!r}: {err}') from None

    def check_repeat(self, node: ast.BinOp, left: Any, right: Any) -> None:
        """``sequence * count``: the result stays within
        :data:`MAX_ITEMS`."""
        sequence, count = (left, right) if isinstance(left, _SEQUENCE) \
            else (right, left)
        if not isinstance(sequence, _SEQUENCE) or isinstance(
                count, bool) or not isinstance(count, int):
            raise LayoutLiteralError(
                f'{self.source(node)!r}: * repeats a tuple, '
                'list or string an integer number of times')
        if count > 0 and len(sequence) * count > MAX_ITEMS:
            raise LayoutLiteralError(
                f'{self.source(node)!r} would have {len(sequence)} x {count} '
                f'items; a layout literal builds at most {MAX_ITEMS} (the '
                'repeat count must be in '
                f'0..{MAX_ITEMS // max(len(sequence), 1)})')

    def check_power(self, node: ast.BinOp, base: Any, exponent: Any) -> None:
        """An integer power stays within :data:`MAX_INT_BITS` (a float one
        overflows in constant time)."""
        if not (isinstance(base, int) and isinstance(exponent, int)) or \
                abs(base) <= 1 or exponent <= 0:
            return
        limit = math.floor(MAX_INT_BITS / math.log2(abs(base)))
        if exponent > limit:
            raise LayoutLiteralError(
                f'{self.source(node)!r} would have about '
                f'{exponent * math.log2(abs(base)):.3g} bits; integers in a '
                f'layout literal stay within +-2**{MAX_INT_BITS} (for base '
                f'{base} the exponent must be at most {limit})')


def evaluate_layout_literal(text: str) -> Any:
    """Evaluate a layout written as text, in time and memory bounded by its
    length.

    Accepts what a ``dynamic=`` layout is written with: numbers, strings,
    ``True`` / ``False`` / ``None``, tuples, lists, sets, ``{...}`` dicts,
    ``dict(key=value, ...)``, unary ``+`` / ``-`` on numbers, arithmetic
    ``+ - * / // % **`` on numbers, and ``+`` / ``*`` on tuples, lists and
    strings (``(True,) * 4``). A tuple, list or string holds at most
    :data:`MAX_ITEMS` items and an integer at most :data:`MAX_INT_BITS`
    bits, both checked before the value is computed (``9 ** 9 ** 9`` is
    refused at once, where ``eval`` would compute it for minutes).

    Args:
        text (str): The expression, e.g. ``"dict(conv_cfg=dict(
            type='ODConv2d'), stages=(True,) * 4)"``.

    Returns:
        The value (not necessarily a dict: the caller checks its type).

    Raises:
        LayoutLiteralError: A ``ValueError``: not such an expression, a
            name or call other than ``dict``, or a value beyond the bounds
            (the message names the keys that lead to the part of ``text``
            refused, that part and the valid range).
        TypeError: ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f'a layout literal is a string, got {text!r}')
    try:
        tree = ast.parse(text.strip(), mode='eval')
    except SyntaxError as err:
        raise LayoutLiteralError(
            f'not a Python expression ({err.msg})') from None
    except (RecursionError, MemoryError):
        raise LayoutLiteralError('nested too deeply') from None
    except ValueError as err:  # e.g. an integer literal of > 4300 digits
        raise LayoutLiteralError(str(err)) from None
    try:
        return _Evaluator(text.strip())(tree)
    except RecursionError:
        raise LayoutLiteralError('nested too deeply') from None
    except LayoutLiteralError:
        raise
    except (TypeError, ValueError) as err:  # unhashable keys, dict(1), ...
        raise LayoutLiteralError(str(err)) from None
