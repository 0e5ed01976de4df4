"""The compiled execution path: selections of plain fields completed without graphql-core's
per-field machinery, with results identical to graphql-core's.

graphql-core completes every field alike: a ``Path``, a ``GraphQLResolveInfo``, the resolver
call, ``complete_value``'s type dispatch, again for every field of every record. Most of a search
response is plain fields (``resolvers.types``: leaf values filled once per record by
``resolvers.present``, where the masks are applied), and that machinery was most of a search's
time. ``CompiledExecutor`` is graphql-core's executor (strawberry's subclass of it) with one
change, in ``execute_fields``: for each selection set it decides once which of its fields are
*plain* and compiles each of those into a closure that reads and completes the value directly.
The closures are compiled once per document and kept with it (as long as the parse cache keeps
the document), per selection set and values of the variables that @include/@skip read.

A field is plain when nothing but its value can be observed of its execution:

- strawberry marks its resolver as the default one (``_is_default``: an attribute read, no
  resolver, no field extension, no permission class), or it is ``__typename``;
- it takes no arguments and carries no directive but @include/@skip (already applied by field
  collection, which stays graphql-core's: aliases, fragments, merging are its own);
- its type, through non-null and list wrappers, is a scalar, an enum, an object type whose
  selected fields are all plain, or a union or interface whose type resolver is one the compiled
  path may call itself (below) and whose selection is plain for *every* possible type (its
  sub-fields collected per possible type by graphql-core's ``collect_subfields``: fragments'
  type conditions, @include/@skip, aliases, merging are its own);
- no middleware wraps resolvers (an extension with a ``resolve`` hook turns the path off).

A compiled field reads its value as strawberry's resolver would (``getattr(source, name)``
where that is exactly what the resolver does, else the resolver itself, called without info).
It either completes without any error or gives up: a null where the schema says non-null, a
value that does not coerce, an Exception as a value (graphql-core raises it), an awaitable,
a list field's value that is not a list or tuple (a generator is read once: graphql-core
iterates it, never a compiled attempt that may stop midway), anything unexpected. Then
graphql-core executes that field as it always does, from the start, in its place among its
siblings; the attempt read attributes only, so it left nothing behind,
and the errors (messages, paths, order), null propagation and data come out as graphql-core's
own. Fields that are not plain (the relationships, the roots, everything that reads ``info``,
where FORBIDDEN_FIELD paths are recorded) always run on graphql-core, and their plain
sub-selections are compiled again.

A value of a union or interface (the search's ``hits``: a list of ``SearchHit``) has its runtime
type resolved as graphql-core's ``complete_abstract_value`` does: the abstract type's
``resolve_type`` (or the executor's default), given the value, an info and the abstract type.
Only strawberry's own resolvers (a union's, an interface's without a resolve_type of its own)
and graphql-core's ``default_type_resolver`` are called: they read of info nothing but
``schema`` and ``field_name``, which is all the info they are given (``_TypeResolverInfo``,
made once per compiled field); reading anything else of it gives up. An awaitable, a name that
is not a string or not a possible type of the abstract one (``ensure_valid_runtime_type``'s
checks), an exception gives up; else the value is completed by the runtime type's compiled
object completer (its is_type_of checked, as ``complete_object_value`` does). A user's
``resolve_type`` (a classmethod of the interface, which may read the context) leaves the field
to graphql-core, and so does a selection that is not all plain under some possible type (a
relationship under ``... on Person``), even if no value is of that type: a value-by-value
fallback would have no path to report at, and a whole-field one would redo the work.

An object type's selection compiles to one generated Python function (``_generated_object``,
like graphql-jit's generated code): its fields read in order, a String's or ID's ``str`` and a
Boolean's ``bool`` copied as they are (graphql-core's coercion returns exactly those as they
are, and neither is awaitable to graphql-core's or strawberry's ``is_awaitable``), so too an
Int's ``int`` within 32 bits and a Float's finite ``float``, any other scalar or enum coerced in
place by its type's own coercion (what the leaf's closure did), a null in a nullable field
written as null, an object field's value handed to that object's generated completer, a list or
tuple completed in one comprehension, every other value completed by its field's own closure,
and the response dict built at once. The closures it replaced cost three calls per leaf.

A union resolved by strawberry's own resolver, none of whose members is a generic's
specialisation, is resolved by reading what that resolver reads (the value's cast, then its
``__strawberry_definition__``, matched by identity, members first):
the same answer without the resolver's walk over the schema's type map, which was a third of
the completion of a search's hits.

``tests/resolvers/test_compiled.py`` runs the schema-driven random documents of the no-leak tests
through both executors and asserts identical responses; ``hub bench differential`` runs
thousands. ``[execution] compiled = false`` (``hub.settings``) turns the path off.
"""

from __future__ import annotations

import keyword
import math
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DirectiveNode,
    FragmentDefinitionNode,
    GraphQLAbstractType,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLUnionType,
    OperationDefinitionNode,
    Undefined,
    VariableNode,
    Visitor,
    default_type_resolver,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    is_specified_scalar_type,
    visit,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path, gather_with_cancel
from graphql.pyutils import is_awaitable as default_is_awaitable
from graphql.type.scalars import (
    serialize_boolean,
    serialize_float,
    serialize_id,
    serialize_int,
    serialize_string,
)
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE
from strawberry.types.field import StrawberryField

# Directives field collection has already applied; any other one leaves the field to graphql-core.
_COLLECTION_DIRECTIVES = frozenset({"include", "skip"})

# Selection sets whose plans one executor keeps (a query has a few dozen at most).
MAX_PLANS = 1024

# Reads a source's field and completes it; raises (anything) to hand it back to graphql-core.
Complete = Callable[[Any], Any]
# A selection set's plan: per response name, its field group and its compiled completer or None.
Plan = tuple[tuple[str, FieldDetailsList, Complete | None], ...]


class _DocumentPlans:
    """What one operation's executions share: the variables its @include/@skip read, and the
    completers compiled for its selection sets. Kept as long as the operation's document (the
    parse cache's), so the field nodes whose ids are in the keys cannot be reused meanwhile."""

    __slots__ = ("plans", "variables")

    def __init__(self, variables: tuple[str, ...]) -> None:
        self.variables = variables
        self.plans: dict[Any, tuple[Complete | None, ...]] = {}


# By the operation node's id, with a weak reference to it: a WeakKeyDictionary would hash the
# node, and graphql-core hashes a node's whole tree, on every lookup.
_DOCUMENTS: dict[int, tuple[weakref.ref[OperationDefinitionNode], _DocumentPlans]] = {}


def _document_plans(
    operation: OperationDefinitionNode, fragments: Iterable[FragmentDefinitionNode]
) -> _DocumentPlans:
    key = id(operation)
    found = _DOCUMENTS.get(key)
    if found is not None and found[0]() is operation:
        return found[1]

    def forget(ref: weakref.ref[OperationDefinitionNode]) -> None:
        entry = _DOCUMENTS.get(key)
        if entry is not None and entry[0] is ref:
            del _DOCUMENTS[key]

    plans = _DocumentPlans(_directive_variables(operation, fragments))
    _DOCUMENTS[key] = (weakref.ref(operation, forget), plans)
    return plans


def _directive_variables(
    operation: OperationDefinitionNode, fragments: Iterable[FragmentDefinitionNode]
) -> tuple[str, ...]:
    """The variables that @include/@skip read anywhere in the operation or its fragments."""
    names: set[str] = set()

    class Collect(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            if node.name.value in _COLLECTION_DIRECTIVES:
                for argument in node.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        names.add(argument.value.name.value)

    for node in (operation, *fragments):
        visit(node, Collect())
    return tuple(sorted(names))


# strawberry's is_type_of (an isinstance test) reads no info; the hub defines no other.
_NO_INFO: Any = None

# The type resolvers of abstract types that the compiled path calls itself: strawberry's own, for
# a union and for an interface without a resolve_type of its own (by where they are defined: a
# new closure per type), and graphql-core's default. They read of info only its ``schema`` and
# ``field_name`` (the default, past a ``__typename``, reads ``is_awaitable``: the compiled path
# gives up there, before it calls any is_type_of), and have no effect but their answer. Any
# other resolve_type (a user's, which may read the context) leaves the field to graphql-core.
_UNION_RESOLVER = (
    "strawberry.types.union",
    "StrawberryUnion.get_type_resolver.<locals>._resolve_union_type",
)
_KNOWN_TYPE_RESOLVERS = frozenset(
    {
        _UNION_RESOLVER,
        (
            "strawberry.schema.schema_converter",
            "GraphQLCoreConverter.from_interface.<locals>._get_resolve_type.<locals>.resolve_type",
        ),
        (default_type_resolver.__module__, default_type_resolver.__qualname__),
    }
)


def _is_known_type_resolver(resolve_type: Any) -> bool:
    code = getattr(resolve_type, "__code__", None)
    if code is None or getattr(resolve_type, "__self__", None) is not None:
        return False  # not a plain function (a bound method: a user's classmethod)
    where = (getattr(resolve_type, "__module__", None), getattr(resolve_type, "__qualname__", None))
    return where in _KNOWN_TYPE_RESOLVERS


def _union_members(
    abstract_type: GraphQLAbstractType, resolve_type: Any, by_name: Mapping[str, Complete]
) -> dict[int, tuple[StrawberryObjectDefinition, Complete]] | None:
    """For a union resolved by strawberry's own resolver, its members by their strawberry
    definition (by id, the definition kept): the resolver answers the member whose definition is
    the value's ``__strawberry_definition__`` when the value is not cast (``strawberry.cast``)
    and no member is a generic's specialisation (``is_implemented_by`` is then an identity
    test, the union's members tried first). None where that does not hold: the resolver is
    called, value by value."""
    where = (getattr(resolve_type, "__module__", None), getattr(resolve_type, "__qualname__", None))
    if where != _UNION_RESOLVER or not isinstance(abstract_type, GraphQLUnionType):
        return None
    members: dict[int, tuple[StrawberryObjectDefinition, Complete]] = {}
    for member in abstract_type.types:
        definition = member.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if not isinstance(definition, StrawberryObjectDefinition):
            return None
        if definition.concrete_of is not None or definition.is_graphql_generic:
            return None
        members.setdefault(id(definition), (definition, by_name[member.name]))
    return members


class _TypeResolverInfo:
    """The info a known type resolver is given on the compiled path: the schema and the field's
    name, which are the same for every request of the document. Reading anything else of it
    (the path, the context, ``is_awaitable``) gives up: graphql-core resolves the field."""

    __slots__ = ("field_name", "schema")

    def __init__(self, schema: Any, field_name: str) -> None:
        self.schema = schema
        self.field_name = field_name

    def __getattr__(self, name: str) -> Any:
        raise _GiveUp


def _attribute_of(extensions: Mapping[str, Any]) -> str | None:
    """The attribute a strawberry basic field reads, where its resolver is exactly
    ``getattr(source, python_name)`` (``StrawberryField.get_result`` with no resolver and the
    default ``getattr``); None otherwise, and the field's resolver is called as it is."""
    definition = extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField):
        return None
    if definition.base_resolver is not None or definition.extensions:
        return None
    if definition.default_resolver is not getattr:
        return None
    name = definition.python_name
    return name if isinstance(name, str) else None


class _GiveUp(Exception):
    """The compiled completion met what only graphql-core reports (an error, an awaitable)."""


# The executors' is_awaitable functions that call no str or bool awaitable (graphql-core's and
# strawberry's): with either, a str or bool value completes without asking it.
_KNOWN_IS_AWAITABLE = frozenset({default_is_awaitable, optimized_is_awaitable})

# The numbers graphql-core's Int and Float coercions return as they are: an int within 32 bits
# (serialize_int), a finite float (serialize_float); the test in the generated code, on ``_v``.
_AS_NUMBER: Mapping[Callable[[Any], Any], tuple[type, str]] = {
    serialize_int: (int, "-2147483648 <= _v <= 2147483647"),
    serialize_float: (float, "_isfinite(_v)"),
}

# The specified scalars whose output coercion returns a value of exactly this type as it is
# (graphql-core's serialize_string / _id / _boolean begin with that isinstance test).
_AS_IT_IS: Mapping[Callable[[Any], Any], type] = {
    serialize_string: str,
    serialize_id: str,
    serialize_boolean: bool,
}


def _fast_leaf(return_type: GraphQLOutputType, is_awaitable: Callable[[Any], bool]) -> type | None:
    """The type whose values a field of ``return_type`` completes as they are (a String's
    str), where the generated completer may copy them without a call; else None."""
    if is_awaitable not in _KNOWN_IS_AWAITABLE:
        return None
    named = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
    if not isinstance(named, GraphQLScalarType):
        return None
    return _AS_IT_IS.get(named.coerce_output_value)


def _item_type(return_type: GraphQLOutputType) -> GraphQLOutputType:
    """A list type's item type (through non-null), else the type itself."""
    listed = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
    return listed.of_type if isinstance(listed, GraphQLList) else return_type


# What a completer is, told to the generator (``_shape``): the non-null wrapper of a completer,
# the completer of a list (of its items' completer), a generated object completer.
_NON_NULL, _LIST, _OBJECT = "non-null", "list", "object"
_SHAPE = "_hub_compiled_shape"


def _marked(complete: Complete, shape: str, part: Complete | None) -> Complete:
    setattr(complete, _SHAPE, (shape, part))
    return complete


def _shape(complete: Complete) -> tuple[str | None, Complete | None]:
    """A completer's shape, through a non-null wrapper: (_OBJECT, the object's completer),
    (_LIST, the items' completer), or (None, None) for anything else."""
    shape, part = getattr(complete, _SHAPE, (None, None))
    if shape == _NON_NULL:
        assert part is not None
        shape, inner = getattr(part, _SHAPE, (None, None))
        if shape == _OBJECT:
            return shape, part
        return (shape, inner) if shape == _LIST else (None, None)
    if shape == _OBJECT:
        return shape, complete
    return (shape, part) if shape == _LIST else (None, None)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Field:
    """One plain field of a selection: how its value is read (``__typename``'s constant, an
    attribute, or the default resolver) and completed (``complete``, for the whole type)."""

    typename: str | None = None
    attribute: str | None = None
    resolve: Callable[..., Any] | None = None
    complete: Complete | None = None
    is_awaitable: Callable[[Any], bool] | None = None
    leaf: type | None = None
    item_leaf: type | None = None
    # The field's type allows null (its completer answers None for None, as graphql-core does).
    nullable: bool = False
    # A scalar or enum field: its type's output coercion, and whether the type is a custom
    # scalar (whose coercion may take anything, an Exception graphql-core raises among it).
    coerce: Callable[[Any], Any] | None = None
    custom: bool = False

    def tail(self) -> Complete:
        """Completes a value read (not None): an awaitable gives up, as graphql-core awaits it."""
        complete = self.complete
        is_awaitable = self.is_awaitable
        assert complete is not None
        assert is_awaitable is not None

        def tail(value: Any) -> Any:
            if is_awaitable(value):
                raise _GiveUp
            return complete(value)

        return tail

    def closure(self) -> Complete:
        """Reads the field of a source and completes it (a selection's field on its own)."""
        if self.typename is not None:
            type_name = self.typename
            return lambda _source: type_name
        complete = self.complete
        assert complete is not None
        tail = self.tail()
        attribute = self.attribute
        if attribute is not None:

            def read_attribute(source: Any) -> Any:
                value = getattr(source, attribute)
                return complete(value) if value is None else tail(value)

            return read_attribute
        resolve = self.resolve
        assert resolve is not None

        def read(source: Any) -> Any:
            value = resolve(source, None)
            return complete(value) if value is None else tail(value)

        return read


def _element(item: Complete, is_awaitable: Callable[[Any], bool]) -> Complete:
    """One item of a list, as ``listed`` completes it."""

    def element(value: Any) -> Any:
        if value is not None and is_awaitable(value):
            raise _GiveUp
        return item(value)

    return element


def _generated_object(object_type: GraphQLObjectType, fields: list[tuple[str, _Field]]) -> Complete:
    """The completer of an object type's selection, generated as one function: each field read
    and completed in order (a String's str or a Boolean's bool copied in place, an object's
    generated completer called directly, a list or tuple in one comprehension, anything else
    through its field's own completer), then the response dict built at once. What
    ``{name: complete(value) for ...}`` over the fields' closures did, without three calls per
    leaf; any failure raises, as there, and graphql-core completes the field it was under."""
    scope: dict[str, Any] = {
        "_Undefined": Undefined,
        "_GiveUp": _GiveUp,
        "_is_type_of": object_type.is_type_of,
        "_Exception": Exception,
        "_getattr": getattr,
        "_type": type,
        "_isinstance": isinstance,
        "_list": list,
        "_tuple": tuple,
        "_isfinite": math.isfinite,
    }
    body = [
        "    if value is None or value is _Undefined:",
        "        return None",
        "    if _isinstance(value, _Exception):",
        "        raise _GiveUp",  # graphql-core raises it
    ]
    if object_type.is_type_of is not None:
        # strawberry's is_type_of reads no info; graphql-core reports an invalid return type
        body += ["    if _is_type_of(value, None) is not True:", "        raise _GiveUp"]
    entries = []
    for index, (response_name, spec) in enumerate(fields):
        if spec.typename is not None:
            entries.append(f"{response_name!r}: {spec.typename!r}")
            continue
        attribute = spec.attribute
        if attribute is not None and attribute.isidentifier() and not keyword.iskeyword(attribute):
            read = f"value.{attribute}"
        elif attribute is not None:
            scope[f"_a{index}"] = attribute
            read = f"_getattr(value, _a{index})"
        else:
            scope[f"_resolve{index}"] = spec.resolve
            read = f"_resolve{index}(value, None)"
        assert spec.complete is not None
        scope[f"_none{index}"] = spec.complete
        scope[f"_tail{index}"] = spec.tail()
        scope[f"_aw{index}"] = spec.is_awaitable
        result = f"_r{index}"
        body += [
            f"    _v = {read}",
            "    if _v is None or _v is _Undefined:",
            # None for a nullable field; a non-null one's completer gives up
            f"        {result} = None" if spec.nullable else f"        {result} = _none{index}(_v)",
        ]
        shape, part = _shape(spec.complete)
        number = _AS_NUMBER.get(spec.coerce) if spec.coerce is not None else None
        if spec.leaf is not None:
            scope[f"_leaf{index}"] = spec.leaf
            body += [f"    elif _type(_v) is _leaf{index}:", f"        {result} = _v"]
        elif number is not None and spec.is_awaitable in _KNOWN_IS_AWAITABLE:
            # An Int or Float that graphql-core's coercion returns as it is; any other value
            # (out of range, a bool, a string) is coerced by the field's completer, below.
            kind, test = number
            scope[f"_num{index}"] = kind
            body += [f"    elif _type(_v) is _num{index} and {test}:", f"        {result} = _v"]
        if spec.coerce is not None and spec.leaf is None:
            # A scalar or enum: what the field's completer does (tail, leaf), in place.
            scope[f"_coerce{index}"] = spec.coerce
            unfit = f"_aw{index}(_v)" + (" or _isinstance(_v, _Exception)" if spec.custom else "")
            body += [
                f"    elif {unfit}:",
                "        raise _GiveUp",
                "    else:",
                f"        {result} = _coerce{index}(_v)",
                f"        if {result} is None or {result} is _Undefined:",
                "            raise _GiveUp",
            ]
            entries.append(f"{response_name!r}: {result}")
            continue
        if shape == _OBJECT:
            # What tail, non-null and the object's completer do, in one call.
            scope[f"_obj{index}"] = part
            body += [f"    elif _aw{index}(_v):", "        raise _GiveUp"]
            body += ["    else:", f"        {result} = _obj{index}(_v)"]
            entries.append(f"{response_name!r}: {result}")
            continue
        elif shape == _LIST and spec.is_awaitable in _KNOWN_IS_AWAITABLE:
            # A list or tuple: iterable, not awaitable; each item as ``listed`` completes it.
            assert part is not None
            scope[f"_elem{index}"] = _element(part, spec.is_awaitable)
            item_shape, item_object = _shape(part)
            if spec.item_leaf is not None:
                scope[f"_eleaf{index}"] = spec.item_leaf
                item = f"x if _type(x) is _eleaf{index} else _elem{index}(x)"
            elif item_shape == _OBJECT:
                scope[f"_eobj{index}"] = item_object
                item = (
                    f"_eobj{index}(x) if x is not None and x is not _Undefined"
                    f" and not _aw{index}(x) else _elem{index}(x)"
                )
            else:
                item = f"_elem{index}(x)"
            body += [
                "    elif _type(_v) is _list or _type(_v) is _tuple:",
                f"        {result} = [{item} for x in _v]",
            ]
        body += ["    else:", f"        {result} = _tail{index}(_v)"]
        entries.append(f"{response_name!r}: {result}")
    body.append("    return {" + ", ".join(entries) + "}")
    name = f"complete_{object_type.name}"
    exec(f"def {name}(value):\n" + "\n".join(body) + "\n", scope)  # noqa: S102
    return _marked(scope[name], _OBJECT, None)


class CompiledExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor (strawberry's), completing plain selections compiled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per grouped field set (memoised by identity by graphql-core's collect_subfields, so one
        # per selection for every record of a list): the set itself, kept alive, and its plan.
        self._plans: dict[int, tuple[GroupedFieldSet, Plan | None]] = {}
        self._shared: _DocumentPlans | None = None
        middleware = self.middleware_manager
        self._compiling = not (middleware is not None and middleware.middlewares)

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        plan = self._plan(parent_type, grouped_field_set)
        if plan is None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        # graphql-core's execute_fields, with compiled fields completed in place.
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, complete in plan:
                if complete is not None:
                    try:
                        results[response_name] = complete(source_value)
                        continue
                    except Exception:  # noqa: S110 - graphql-core executes it, errors and all
                        pass
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return self._gathered(results, awaitable_fields)

    async def _gathered(self, results: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        # The awaiting half of graphql-core's execute_fields, as it is there.
        if len(fields) == 1:
            results[fields[0]] = await results[fields[0]]
        else:
            awaited = await gather_with_cancel(*(results[field] for field in fields))
            results.update(zip(fields, awaited, strict=True))
        return results

    # -- compiling -------------------------------------------------------------------------------

    def _plan(self, parent_type: GraphQLObjectType, grouped: GroupedFieldSet) -> Plan | None:
        """The plan of a selection set, or None when no field of it is compiled."""
        if not self._compiling:
            return None
        found = self._plans.get(id(grouped))
        if found is not None:
            return found[1]
        completers = self._completers(parent_type, grouped)
        plan: Plan | None = None
        if any(c is not None for c in completers):
            plan = tuple(
                (name, details, complete)
                for (name, details), complete in zip(grouped.items(), completers, strict=True)
            )
        if len(self._plans) >= MAX_PLANS:
            # A subscription's executor lives for its stream, with new root sets per event.
            self._plans.clear()
        self._plans[id(grouped)] = (grouped, plan)
        return plan

    def _completers(
        self, parent_type: GraphQLObjectType, grouped: GroupedFieldSet
    ) -> tuple[Complete | None, ...]:
        """Each field's completer, compiled once per document (``_DOCUMENTS``): the same
        selection set (the same field nodes under the same parent type) with the same values
        of the variables @include/@skip read compiles the same, request after request."""
        shared = self._shared
        if shared is None:
            shared = self._shared = _document_plans(
                self.operation, self.fragment_definitions.values()
            )
        coerced = self.variable_values.coerced
        key = (
            parent_type,
            tuple((name, tuple(id(d.node) for d in details)) for name, details in grouped.items()),
            tuple(coerced.get(name, Undefined) for name in shared.variables),
            self.is_awaitable,
            self.type_resolver,  # for an abstract type without a resolve_type of its own
        )
        try:
            found = shared.plans.get(key)
        except TypeError:  # a variable value that is not hashable: compiled for this request
            return tuple(self._compile_field(parent_type, d) for d in grouped.values())
        if found is None:
            found = tuple(self._compile_field(parent_type, d) for d in grouped.values())
            if len(shared.plans) >= MAX_PLANS:
                shared.plans.clear()
            shared.plans[key] = found
        return found

    def _compile_field(
        self, parent_type: GraphQLObjectType, details: FieldDetailsList
    ) -> Complete | None:
        spec = self._field_spec(parent_type, details)
        return None if spec is None else spec.closure()

    def _field_spec(
        self, parent_type: GraphQLObjectType, details: FieldDetailsList
    ) -> _Field | None:
        """How one field is read and completed, or None when it is not plain."""
        first = details[0].node
        for detail in details:
            node = detail.node
            if node.arguments or detail.defer_usage is not None:
                return None
            if detail.fragment_variable_values is not None:
                return None
            if any(d.name.value not in _COLLECTION_DIRECTIVES for d in node.directives or ()):
                return None
        name = first.name.value
        if name == "__typename":
            return _Field(typename=parent_type.name)
        field_def = parent_type.fields.get(name)
        if field_def is None or field_def.args:
            return None
        resolve = field_def.resolve
        if resolve is None or not getattr(resolve, "_is_default", False):
            return None
        complete = self._compile_type(field_def.type, details)
        if complete is None:
            return None
        named: Any = field_def.type
        if isinstance(named, GraphQLNonNull):
            named = named.of_type
        scalar = isinstance(named, GraphQLScalarType | GraphQLEnumType)
        return _Field(
            attribute=_attribute_of(field_def.extensions),
            resolve=resolve,
            complete=complete,
            is_awaitable=self.is_awaitable,
            leaf=_fast_leaf(field_def.type, self.is_awaitable),
            item_leaf=_fast_leaf(_item_type(field_def.type), self.is_awaitable),
            nullable=not isinstance(field_def.type, GraphQLNonNull),
            coerce=named.coerce_output_value if scalar else None,
            custom=scalar
            and not isinstance(named, GraphQLEnumType)
            and not is_specified_scalar_type(named),
        )

    def _compile_type(
        self, return_type: GraphQLOutputType, details: FieldDetailsList
    ) -> Complete | None:
        if is_non_null_type(return_type):
            assert isinstance(return_type, GraphQLNonNull)
            inner = self._compile_type(return_type.of_type, details)
            if inner is None:
                return None

            def non_null(value: Any) -> Any:
                completed = inner(value)
                if completed is None:
                    raise _GiveUp  # graphql-core: "Cannot return null for non-nullable field"
                return completed

            return _marked(non_null, _NON_NULL, inner)
        if is_list_type(return_type):
            assert isinstance(return_type, GraphQLList)
            item = self._compile_type(return_type.of_type, details)
            if item is None:
                return None
            is_awaitable = self.is_awaitable
            plain = is_awaitable in _KNOWN_IS_AWAITABLE

            def listed(value: Any) -> Any:
                if value is None or value is Undefined:
                    return None
                if type(value) is not list and type(value) is not tuple:
                    # Any other iterable (a generator: read once) is graphql-core's to iterate:
                    # a give-up midway would leave it half read for graphql-core.
                    raise _GiveUp
                if not plain and is_awaitable(value):
                    raise _GiveUp  # (graphql-core's and strawberry's: no list is awaitable)
                out = []
                for element in value:
                    if element is not None and is_awaitable(element):
                        raise _GiveUp
                    out.append(item(element))
                return out

            return _marked(listed, _LIST, item)
        if is_leaf_type(return_type):
            coerce = return_type.coerce_output_value
            if isinstance(return_type, GraphQLEnumType) or is_specified_scalar_type(return_type):

                def leaf(value: Any) -> Any:
                    # An Exception value (graphql-core raises it) does not coerce: gives up.
                    if value is None or value is Undefined:
                        return None
                    coerced = coerce(value)
                    if coerced is None or coerced is Undefined:
                        raise _GiveUp
                    return coerced

                return leaf

            def custom_leaf(value: Any) -> Any:
                # A custom scalar's coercion may take anything, an Exception graphql-core raises.
                if value is None or value is Undefined:
                    return None
                if isinstance(value, Exception):
                    raise _GiveUp
                coerced = coerce(value)
                if coerced is None or coerced is Undefined:
                    raise _GiveUp
                return coerced

            return custom_leaf
        if is_object_type(return_type):
            assert isinstance(return_type, GraphQLObjectType)
            return self._compile_object(return_type, details)
        if is_abstract_type(return_type):
            return self._compile_abstract(return_type, details)
        return None

    def _compile_abstract(
        self, abstract_type: GraphQLAbstractType, details: FieldDetailsList
    ) -> Complete | None:
        """A union or interface: the runtime type resolved as graphql-core's
        ``complete_abstract_value`` does (the same type resolver, ``ensure_valid_runtime_type``'s
        checks), then the value completed by that type's compiled object completer. Compiled
        only when the selection is all plain for every possible type: else the values of that
        type would give up the whole field, after the work on the values before them."""
        resolve_type = abstract_type.resolve_type or self.type_resolver
        if not _is_known_type_resolver(resolve_type):
            return None
        # The types ensure_valid_runtime_type accepts: the object types that are sub-types of it.
        by_name: dict[str, Complete] = {}
        for possible in self.schema.get_possible_types(abstract_type):
            complete_possible = self._compile_object(possible, details)
            if complete_possible is None:
                return None
            by_name[possible.name] = complete_possible
        if not by_name:
            return None
        info: Any = _TypeResolverInfo(self.schema, details[0].node.name.value)
        is_awaitable = self.is_awaitable
        members = _union_members(abstract_type, resolve_type, by_name)

        def complete_abstract(value: Any) -> Any:
            if value is None or value is Undefined:
                return None
            if members is not None and getattr(value, TYPE_CAST_ATTRIBUTE, None) is None:
                # What strawberry's union resolver answers, read as it reads it.
                definition = getattr(value, "__strawberry_definition__", None)
                member = members.get(id(definition))
                if member is not None and member[0] is definition:
                    return member[1](value)
            # (An Exception as a value, which graphql-core raises: the known type resolvers
            # raise or give up on it, and the runtime type's completer gives up on it.)
            type_name = resolve_type(value, info, abstract_type)
            if type(type_name) is not str:
                if type_name is not None and is_awaitable(type_name):
                    close = getattr(type_name, "close", None)
                    if close is not None:
                        close()  # graphql-core awaits its own call's
                raise _GiveUp  # graphql-core reports it (not a type name)
            complete = by_name.get(type_name)
            if complete is None:
                raise _GiveUp  # not a possible type: graphql-core reports it
            return complete(value)

        return complete_abstract

    def _compile_object(
        self, object_type: GraphQLObjectType, details: FieldDetailsList
    ) -> Complete | None:
        try:
            grouped, defer_usages, forbidden = self.collect_subfields(object_type, details)
        except Exception:
            return None  # graphql-core meets it again where it would, and reports it
        if defer_usages or forbidden:
            return None
        fields: list[tuple[str, _Field]] = []
        for name, sub_details in grouped.items():
            spec = self._field_spec(object_type, sub_details)
            if spec is None:
                return None
            fields.append((name, spec))
        return _generated_object(object_type, fields)
