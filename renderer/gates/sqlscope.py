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

import re
from dataclasses import dataclass
from pathlib import Path

import pglast
from pglast import ast, enums
from pglast.parser import ParseError

from renderer.gates.sqlscope_rules import (
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


def plugin_schema(version_dir: Path) -> str:
    """The schema a catalog version's role owns: ``spec.database.schema``, else the plugin name with ``_``.

    A plugin.yaml that cannot be read gives the default (``load`` reports the file itself).
    """
    from renderer.core.yamlio import YamlProblem, load_document

    default = Path(version_dir).parent.name.replace("-", "_")
    try:
        path = Path(version_dir) / "plugin.yaml"
        if path.is_symlink() or not path.is_file():
            return default
        data = load_document(path.read_bytes()).data
        schema = ((data.get("spec") or {}).get("database") or {}).get("schema")
    except (OSError, YamlProblem, AttributeError):
        return default
    return schema if isinstance(schema, str) and schema else default


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

    # -- positions -------------------------------------------------------------------------

    def line_at(self, offset: int) -> int:
        return self.file.count("\n", 0, max(offset, 0)) + 1

    def add(self, offset: int, rule: str, what: str) -> None:
        why = _WHY.format(schema=self.schema)
        self.found.append(ScopeFinding(self.line_at(offset), rule, f"{what}: {RULES[rule]}; {why}"))

    # -- SQL text ---------------------------------------------------------------------------

    def check_text(self, text: str, base: int) -> None:
        """Parse ``text`` (which starts at file offset ``base``) and check every statement."""
        try:
            stmts = pglast.parse_sql(text)
        except ParseError as err:
            message, where = (err.args + (0,))[:2] if err.args else ("invalid SQL", 0)
            self.found.append(ScopeFinding(self.line_at(base + int(where or 0)), "syntax-error",
                                           f"invalid SQL ({message}): fix the statement so that PostgreSQL can parse it"))
            return
        starts = [tok.start for tok in pglast.parser.scan(text) if not tok.name.endswith("COMMENT")]
        outer = self.statement
        for raw in stmts:
            first = next((s for s in starts if s >= raw.stmt_location), raw.stmt_location)
            end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(text)
            self.statement = text[raw.stmt_location:end]
            self.walk(raw.stmt, base, base + first, text)
        self.statement = outer

    # -- the tree ---------------------------------------------------------------------------

    def walk(self, node, base: int, at: int, text: str) -> None:
        """Visit ``node`` and its children; ``at`` is the file offset of the nearest located ancestor."""
        if isinstance(node, tuple):
            for item in node:
                self.walk(item, base, at, text)
            return
        if not isinstance(node, ast.Node):
            return
        loc = getattr(node, "location", None)
        if isinstance(loc, int) and loc >= 0 and not type(node).__name__.endswith("Stmt"):  # statements: their start
            at = base + loc
        self.visit(node, base, at, text)
        for name in node.__slots__:
            if name in ("location", "stmt_location"):
                continue
            child = getattr(node, name, None)
            if isinstance(child, (ast.Node, tuple)):
                self.walk(child, base, at, text)

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
            if "LookupExplicitNamespace" in message and not _PUBLIC.search(self.statement):
                own = re.compile(rf'(?i)(?<![\w$".])(?:{re.escape(self.schema)}|"{re.escape(self.schema)}")\s*\.')
                try:
                    tree, alias = pglast.parse_plpgsql(own.sub("public.", self.statement)), "public"
                except ParseError:
                    pass
            if tree is None and _PUBLIC.search(self.statement):
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
        at = start + _offset_of_line(self.file[start:], lineno)
        for key, value in node.items():
            if key.startswith("PLpgSQL_stmt_dyn") or key == "dynquery":
                line = value.get("lineno", lineno) if isinstance(value, dict) else lineno
                self.add(start + _offset_of_line(self.file[start:], line), "scope-dynamic-sql", "EXECUTE")
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


_PUBLIC = re.compile(r'(?i)(?<![\w$".])(?:public|"public")\s*\.')


def _offset_of_line(text: str, lineno: int) -> int:
    offset = 0
    for _ in range(max(lineno - 1, 0)):
        nxt = text.find("\n", offset)
        if nxt < 0:
            break
        offset = nxt + 1
    return offset


def _split_name(text: str) -> list[str]:
    """``a.b``, ``"A".b`` as PostgreSQL reads a qualified name in a string (unquoted parts folded)."""
    parts, cur, quoted, i = [], "", False, 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == '"' and text[i + 1:i + 2] == '"':
                cur += '"'
                i += 1
            elif ch == '"':
                quoted = False
            else:
                cur += ch
        elif ch == '"':
            quoted = True
        elif ch == ".":
            parts.append(cur)
            cur = ""
        elif not ch.isspace():
            cur += ch.lower()
        i += 1
    parts.append(cur)
    return parts
