"""Scope rules for migrations: a migration may only touch the plugin's own schema.

The plugin's database role owns exactly one schema (CONTRACT section 2; ``spec.database.schema``,
default the plugin name with ``-`` as ``_``) and nothing else. A migration that changes roles or
privileges, runs a program or reads server files, loads code, installs extensions, creates
database-wide objects, changes ``search_path`` or names any other schema is rejected, in every
catalog version (the first one too): these are not compatibility questions but escapes.

Statements are parsed with PostgreSQL's own parser (``pglast``, i.e. libpg_query), not matched by
text, so comments, quoting, case and line breaks cannot hide a statement. Function bodies and
``DO`` blocks are checked too: ``LANGUAGE sql`` bodies are parsed as SQL, PL/pgSQL bodies with
PL/pgSQL's parser, whose embedded statements go through the same rules; dynamic SQL
(``EXECUTE``) cannot be checked and is rejected; any other language is rejected.

``check_sql(text, schema)`` returns ``ScopeFinding``s (1-based line, rule id, message); the
rule ids are listed in ``RULES`` and documented in ``docs/migrations.md``.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

import pglast
from pglast import ast, enums
from pglast.parser import ParseError

from renderer.gates.sqlscope_rules import (
    PUBLIC_RE as _PUBLIC_RE,
    plugin_schema,  # noqa: F401  (part of this module's interface)
    skip_space as _skip_space,
    split_name as _split_name,
    BANNED_FUNCTIONS as _BANNED_FUNCTIONS,
    DB_WIDE as _DB_WIDE,
    DROP_KIND as _DROP_KIND,
    EXTENSION as _EXTENSION,
    IDENT as _IDENT,
    REG_TYPES as _REG_TYPES,
    ROLE as _ROLE,
    ROLE_SETTINGS as _ROLE_SETTINGS,
    RULES,
    SEQUENCE_FUNCTIONS as _SEQUENCE_FUNCTIONS,
    SERVER_SETTINGS as _SERVER_SETTINGS,
    SUB_OBJECTS as _SUB_OBJECTS,
    TRUSTED_LANGUAGES,
    WHY as _WHY,
)


@dataclass(frozen=True, order=True)
class ScopeFinding:
    line: int  # 1-based
    rule: str
    message: str


def check_sql(text: str, schema: str) -> list[ScopeFinding]:
    """Every statement of ``text`` that would leave ``schema``, or ``syntax-error`` if it does not parse."""
    checker = _Checker(text, schema)
    checker.check_text(text, 0)
    return sorted(set(checker.found))


class _Checker:
    def __init__(self, text: str, schema: str, alias: str | None = None):
        self.file = text
        self.schema = schema
        self.alias = alias  # another name that stands for the plugin's schema (see plpgsql)
        self.found: list[ScopeFinding] = []
        self.statement = ""  # the text of the statement being walked
        self._lines: list[int] | None = None

    # -- positions -------------------------------------------------------------------------

    def line_at(self, offset: int) -> int:
        if self._lines is None:
            self._lines = [0] + [m.end() for m in re.finditer("\n", self.file)]
        return bisect.bisect_right(self._lines, max(offset, 0))

    def line_offset(self, start: int, lineno: int) -> int:
        """The file offset of line ``lineno`` (1 = the line ``start`` is on) counted from ``start``."""
        pos = start
        for _ in range(max(lineno - 1, 0)):
            nxt = self.file.find("\n", pos)
            if nxt < 0:
                break
            pos = nxt + 1
        return pos

    def add(self, offset: int, rule: str, what: str) -> None:
        why = _WHY.format(schema=self.schema)
        self.found.append(ScopeFinding(self.line_at(offset), rule, f"{what}: {RULES[rule]}; {why}"))

    # -- SQL text ---------------------------------------------------------------------------

    def check_text(self, text: str, base: int) -> None:
        """Parse ``text`` (which starts at file offset ``base``) and check every statement."""
        try:
            # The JSON parse stops cleanly at PostgreSQL's stack-depth limit; pglast's tree
            # conversion alone would crash the process on a hostile, deeply nested statement.
            pglast.parser.parse_sql_json(text)
            stmts = pglast.parse_sql(text)
        except RecursionError:
            self.found.append(ScopeFinding(self.line_at(base), "syntax-error",
                                           "invalid SQL: a statement is nested too deeply for the gate to check. Simplify it."))
            return
        except ParseError as err:
            message, where = (err.args + (0,))[:2] if err.args else ("invalid SQL", 0)
            self.found.append(ScopeFinding(self.line_at(base + int(where or 0)), "syntax-error",
                                           f"invalid SQL: {message}. Fix the statement so that PostgreSQL can parse it."))
            return
        outer = self.statement
        for raw in stmts:
            first = _skip_space(text, raw.stmt_location)
            end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(text)
            self.statement = text[raw.stmt_location:end]
            self.walk(raw.stmt, base, base + first, text)
        self.statement = outer

    # -- the tree ---------------------------------------------------------------------------

    def walk(self, root, base: int, at: int, text: str) -> None:
        """Visit ``root`` and its descendants (iteratively: no depth limit); ``at`` is the file
        offset of the nearest located ancestor."""
        stack = [(root, at)]
        while stack:
            node, at = stack.pop()
            if isinstance(node, tuple):
                stack.extend((item, at) for item in reversed(node))
                continue
            if not isinstance(node, ast.Node):
                continue
            loc = getattr(node, "location", None)
            if isinstance(loc, int) and loc >= 0 and not type(node).__name__.endswith("Stmt"):  # statements: their start
                at = base + loc
            self.visit(node, base, at, text)
            children = [getattr(node, name, None) for name in node.__slots__ if name not in ("location", "stmt_location")]
            stack.extend((child, at) for child in reversed(children) if isinstance(child, (ast.Node, tuple)))

    def visit(self, node, base: int, at: int, text: str) -> None:
        kind = type(node).__name__
        if kind in _ROLE:
            self.add(at, "scope-role", _ROLE[kind])
        elif kind in _EXTENSION:
            self.add(at, "scope-extension", _EXTENSION[kind])
        elif kind in _DB_WIDE:
            self.add(at, "scope-database", _DB_WIDE[kind])
        elif kind in ("GrantStmt", "AlterDefaultPrivilegesStmt"):
            if kind == "AlterDefaultPrivilegesStmt":
                self.add(at, "scope-privilege", "ALTER DEFAULT PRIVILEGES")
            elif node.targtype != enums.GrantTargetType.ACL_TARGET_DEFAULTS:
                self.add(at, "scope-privilege", "GRANT" if node.is_grant else "REVOKE")
        elif kind in ("CreateSchemaStmt",):
            self.add(at, "scope-schema", "CREATE SCHEMA")
        elif kind == "LoadStmt":
            self.add(at, "scope-program", "LOAD")
        elif kind == "CopyStmt":
            if node.is_program:
                self.add(at, "scope-program", "COPY ... PROGRAM")
            elif node.filename is not None:
                self.add(at, "scope-program", "COPY to or from a server file")
        elif kind == "VariableSetStmt":
            self.setting(node, at, "SET")
        elif kind == "DropStmt":
            self.drop(node, at)
        elif kind == "RenameStmt":
            if node.renameType == enums.ObjectType.OBJECT_ROLE:
                self.add(at, "scope-role", "ALTER ROLE ... RENAME")
            elif node.renameType == enums.ObjectType.OBJECT_SCHEMA:
                self.add(at, "scope-schema", "ALTER SCHEMA ... RENAME")
            elif node.renameType in (enums.ObjectType.OBJECT_DATABASE, enums.ObjectType.OBJECT_TABLESPACE):
                self.add(at, "scope-database", "ALTER DATABASE/TABLESPACE ... RENAME")
            self.object_name(node.object, node.renameType, at)
        elif kind == "AlterObjectSchemaStmt":
            if node.newschema != self.schema:
                self.add(at, "scope-other-schema", f"SET SCHEMA {node.newschema}")
            self.object_name(node.object, node.objectType, at)
        elif kind in ("CommentStmt",):
            self.comment(node, at)
        elif kind == "AlterTableCmd":
            if node.subtype == enums.AlterTableType.AT_ChangeOwner:
                self.add(at, "scope-role", "ALTER ... OWNER TO")
            elif node.subtype == enums.AlterTableType.AT_SetTableSpace:
                self.add(at, "scope-database", "SET TABLESPACE")
        elif kind in ("CreateStmt", "IndexStmt", "CreateTableAsStmt", "IntoClause"):
            space = getattr(node, "tablespacename", None) or getattr(node, "tableSpace", None)
            if space:
                self.add(at, "scope-database", f"TABLESPACE {space}")
        elif kind == "RangeVar":
            self.qualified(at, node.catalogname, node.schemaname, f"{node.schemaname}.{node.relname}")
        elif kind in ("TypeName", "FuncCall"):
            self.function_or_type(node, kind, at, text, base)
        elif kind == "ColumnRef":
            self.name_list(node.fields, 2, at)
        elif kind == "ObjectWithArgs":
            self.name_list(node.objname, 1, at)
        elif kind in ("CreateFunctionStmt", "DoStmt", "AlterFunctionStmt"):
            self.routine(node, kind, at)
        elif kind == "TypeCast":
            self.string_reference(node, at)
        elif kind == "DefElem" and node.defname == "owned_by" and isinstance(node.arg, tuple):
            self.name_list(node.arg, 2, at)
        for field in ("defnames", "typeName", "domainname", "collname", "opclass", "conversion_name",
                      "opname", "opfamilyname", "funcname", "handler_name", "validator"):
            names = getattr(node, field, None) if kind not in ("TypeName", "FuncCall") else None
            if isinstance(names, tuple) and names and all(isinstance(n, ast.String) for n in names):
                self.name_list(names, 1, at)

    # -- rules ------------------------------------------------------------------------------

    def qualified(self, at: int, catalog: str | None, schema: str | None, shown: str) -> None:
        if catalog:
            self.add(at, "scope-other-schema", f"{catalog}.{shown} names another database")
        elif schema and schema not in (self.schema, self.alias):
            self.add(at, "scope-other-schema", f"{shown} is in schema {schema!r}")

    def name_list(self, names, depth: int, at: int) -> None:
        parts = [n.sval if isinstance(n, ast.String) else "*" for n in names if isinstance(n, (ast.String, ast.A_Star))]
        if len(parts) != len(names) or len(parts) <= depth:
            return
        schema = parts[-1 - depth]
        catalog = parts[-2 - depth] if len(parts) > depth + 1 else None
        self.qualified(at, catalog, schema, ".".join(parts))

    def object_name(self, obj, objtype, at: int) -> None:
        if isinstance(obj, tuple):
            self.name_list(obj, 2 if objtype in _SUB_OBJECTS else 1, at)

    def function_or_type(self, node, kind: str, at: int, text: str, base: int) -> None:
        names = node.names if kind == "TypeName" else node.funcname
        parts = [n.sval for n in names or () if isinstance(n, ast.String)]
        if not parts:
            return
        if kind == "FuncCall" and parts[-1] in _BANNED_FUNCTIONS and (len(parts) == 1 or parts[-2] == "pg_catalog"):
            self.add(at, _BANNED_FUNCTIONS[parts[-1]], f"{parts[-1]}()")
        if kind == "FuncCall" and parts[-1] in _SEQUENCE_FUNCTIONS:
            for arg in node.args or ():
                self.literal_name(arg, at)
        if len(parts) < 2:
            return
        if parts[-2] == "pg_catalog":
            # The parser spells built-in types (bigint) and SQL-syntax functions (EXTRACT) as
            # pg_catalog.x: only a pg_catalog that the text itself writes counts.
            if kind == "FuncCall" and node.funcformat == enums.CoercionForm.COERCE_SQL_SYNTAX:
                return
            m = _IDENT.match(text, max(at - base, 0))
            if not m or (m.group(2) or "").lower() != "pg_catalog" and (m.group(1) or "").replace('""', '"') != "pg_catalog":
                return
        self.name_list(names, 1, at)

    def setting(self, node, at: int, verb: str) -> None:
        name = (node.name or "").lower()
        if node.kind == enums.VariableSetKind.VAR_RESET_ALL:
            self.add(at, "scope-search-path", "RESET ALL resets search_path and the role")
        elif name in _ROLE_SETTINGS:
            self.add(at, "scope-role", f"{verb} {name.replace('_', ' ').upper()}")
        elif name == "search_path":
            values = [a.val.sval for a in node.args or () if isinstance(a, ast.A_Const) and isinstance(a.val, ast.String)]
            if node.kind != enums.VariableSetKind.VAR_SET_VALUE or values != [self.schema]:
                self.add(at, "scope-search-path", f"{verb} search_path (only `{self.schema}` alone is allowed)")
        elif name in _SERVER_SETTINGS:
            values = [a.val.sval for a in node.args or () if isinstance(a, ast.A_Const) and isinstance(a.val, ast.String)]
            if values != [""]:
                self.add(at, "scope-database", f"{verb} {name}")

    def drop(self, node, at: int) -> None:
        kind = _DROP_KIND.get(node.removeType)
        if kind:
            self.add(at, kind[0], kind[1])
        for obj in node.objects or ():
            self.object_name(obj, node.removeType, at)

    def comment(self, node, at: int) -> None:
        objtype = node.objtype
        if objtype == enums.ObjectType.OBJECT_SCHEMA:
            if getattr(node.object, "sval", None) != self.schema:
                self.add(at, "scope-other-schema", f"COMMENT ON SCHEMA {getattr(node.object, 'sval', '?')}")
        elif objtype in (enums.ObjectType.OBJECT_ROLE, enums.ObjectType.OBJECT_DATABASE,
                         enums.ObjectType.OBJECT_TABLESPACE, enums.ObjectType.OBJECT_EXTENSION,
                         enums.ObjectType.OBJECT_EVENT_TRIGGER, enums.ObjectType.OBJECT_LANGUAGE):
            self.add(at, "scope-database", "COMMENT ON an object outside the schema")
        else:
            self.object_name(node.object, objtype, at)

    def literal_name(self, arg, at: int) -> None:
        if isinstance(arg, ast.A_Const) and isinstance(arg.val, ast.String):
            parts = _split_name(arg.val.sval)
            if len(parts) >= 2:
                self.qualified(at, parts[-3] if len(parts) > 2 else None, parts[-2], ".".join(parts))

    def string_reference(self, node, at: int) -> None:
        names = [n.sval for n in node.typeName.names or () if isinstance(n, ast.String)]
        if names and names[-1] in _REG_TYPES:
            self.literal_name(node.arg, at)

    def routine(self, node, kind: str, at: int) -> None:
        options = {}
        for opt in (node.args if kind == "DoStmt" else node.actions if kind == "AlterFunctionStmt" else node.options) or ():
            options.setdefault(opt.defname, opt)
            if opt.defname == "security" and getattr(opt.arg, "boolval", False):
                self.add(at, "scope-security-definer", "SECURITY DEFINER")
        if kind == "AlterFunctionStmt":
            return
        lang_opt = options.get("language")
        language = (lang_opt.arg.sval if lang_opt is not None else "plpgsql" if kind == "DoStmt" else "sql").lower()
        if language not in TRUSTED_LANGUAGES:
            self.add(at, "scope-language", f"LANGUAGE {language}")
            return
        body = options.get("as")
        if body is None:
            return  # BEGIN ATOMIC: sql_body is part of the tree, walked like any statement
        text = body.arg.sval if isinstance(body.arg, ast.String) else (
            body.arg[0].sval if isinstance(body.arg, tuple) and len(body.arg) == 1 else None)
        if text is None:
            self.add(at, "scope-language", "a function body given as object file and symbol")
            return
        start = self.body_offset(body, at, text)
        if language == "sql":
            self.check_text(text, start)
        else:
            self.plpgsql(text, start, kind)

    def body_offset(self, body, at: int, text: str) -> int:
        """The file offset of the body's first character (after its opening quote or $tag$)."""
        loc = getattr(body, "arg_location", None)
        found = self.file.find(text, loc if isinstance(loc, int) and loc >= 0 else at)
        return found if found >= 0 else at

    def plpgsql(self, body: str, start: int, kind: str) -> None:
        # PL/pgSQL's parser needs the whole statement (a function's return type shapes RETURN).
        # libpg_query resolves qualified types only in pg_catalog and public: when the statement
        # names none in public, its own schema is parsed as public and public read as its own.
        alias = None
        try:
            tree = pglast.parse_plpgsql(self.statement)
        except ParseError as err:
            tree, message = None, str(err.args[0] if err.args else err)
            if "LookupExplicitNamespace" in message and not _PUBLIC_RE.search(self.statement):
                own = re.compile(rf'(?i)(?<![\w$".])(?:{re.escape(self.schema)}|"{re.escape(self.schema)}")\s*\.')
                try:
                    tree, alias = pglast.parse_plpgsql(own.sub("public.", self.statement)), "public"
                except ParseError:
                    pass
            if tree is None and _PUBLIC_RE.search(self.statement):
                self.add(start, "scope-other-schema", "the function names schema 'public'")
                return
            if tree is None:
                self.found.append(ScopeFinding(self.line_at(start), "syntax-error",
                                               f"invalid PL/pgSQL ({message}): fix the body"))
                return
        saved, self.alias = self.alias, alias or self.alias
        self.plpgsql_tree(tree, start)
        self.alias = saved

    def plpgsql_tree(self, node, start: int, lineno: int = 1) -> None:
        if isinstance(node, list):
            for item in node:
                self.plpgsql_tree(item, start, lineno)
            return
        if not isinstance(node, dict):
            return
        lineno = node.get("lineno", lineno) if isinstance(node.get("lineno"), int) else lineno
        at = self.line_offset(start, lineno)
        for key, value in node.items():
            if key.startswith("PLpgSQL_stmt_dyn") or key == "dynquery":
                line = value.get("lineno", lineno) if isinstance(value, dict) else lineno
                self.add(self.line_offset(start, line), "scope-dynamic-sql", "EXECUTE")
            if key == "PLpgSQL_expr" and isinstance(value, dict) and isinstance(value.get("query"), str):
                self.plpgsql_expr(value["query"], value.get("parseMode", 0), at)
                continue
            self.plpgsql_tree(value, start, lineno)

    def plpgsql_expr(self, query: str, mode: int, at: int) -> None:
        if mode == 0:
            sql = query
        elif mode == 2:
            sql = "SELECT " + query
        else:  # assignments: `target := expression`
            sql = "SELECT " + query.split(":=", 1)[-1] if ":=" in query else "SELECT " + query
        sub = _Checker(sql, self.schema, self.alias)
        sub.check_text(sql, 0)
        for f in sub.found:
            self.found.append(ScopeFinding(self.line_at(at), f.rule, f.message))
