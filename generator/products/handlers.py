"""The admin app's data-product, team-key and audit routes (operationIds `products.<method>` in
schemas/admin.yaml). Thin: identify the caller, authorise, delegate to the store; bodies are validated by
Connexion against admin.yaml before a handler runs, and cross-field rules by `servings.check_serving`."""

from __future__ import annotations

from typing import Any

from connexion import context

from generator.errors import Issue, bad_request, conflict, not_found
from generator.identity import Principal, principal_of
from generator.products import audit, credentials, store
from generator.products.access import (
    default_team,
    forbidden,
    require_caller,
    require_owner,
    require_owner_read,
    require_team,
    require_writer,
)
from generator.products.catalog import catalog
from generator.products.policies import team_policy
from generator.products.servings import check_serving
from generator.runtime import Runtime

JSON = {"Content-Type": "application/json"}
Reply = tuple[Any, int, dict[str, str]]


def reply(body: Any, status: int = 200) -> Reply:
    return body, status, JSON


def caller() -> Principal:
    return principal_of(context.scope)


class ProductHandlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @property
    def engine(self) -> Any:
        return self.runtime.engine

    # -- products ------------------------------------------------------------------------------------------

    def list_products(self) -> Reply:
        require_caller(caller())
        return reply({"dataProducts": store.views(self.engine)})

    def get_product(self, name: str) -> Reply:
        require_caller(caller())
        product = store.view(self.engine, name)
        from generator.datasets.links import product_datasets  # datasets (issue 15), when configured

        datasets = product_datasets(self.engine, product["sources"])
        return reply(product if datasets is None else {**product, "datasets": datasets})

    def put_product(self, name: str, body: dict[str, Any]) -> Reply:
        principal = caller()
        require_writer(principal)
        if body.get("dataProductName", name) != name:
            raise conflict(f"The body names product {body['dataProductName']!r}, the path {name!r}",
                           pointer="/dataProductName")
        fields = {k: v for k, v in body.items() if k not in ("owner", "dataProductName")}

        def decide_owner(before: dict[str, Any] | None) -> str:
            if before is not None:
                require_owner(principal, name, before["owner"])
            wanted = body.get("owner") or (before or {}).get("owner") or default_team(principal)
            if wanted is None:
                raise bad_request("Name the product's owner team", [Issue("/owner", "is required: the caller is "
                                                                          "not in exactly one team")])
            if not (principal.admin or principal.member_of(wanted)):
                raise forbidden(f"{principal.subject} is not a member of {wanted}, so cannot make it the owner "
                                f"of data product {name!r}")
            return str(wanted)

        created = store.put_product(self.engine, principal, name, fields, decide_owner)
        return reply(store.view(self.engine, name), 201 if created else 200)

    def _owned(self, name: str) -> tuple[Principal, str]:
        principal = caller()
        require_caller(principal)
        owner = store.owner_of(self.engine, name)
        require_owner(principal, name, owner)
        return principal, owner

    # -- parts ---------------------------------------------------------------------------------------------

    def add_source(self, name: str, body: dict[str, Any]) -> Reply:
        principal, _ = self._owned(name)
        from generator.datasets.links import check_source  # a DATASET source names a registered dataset

        check_source(self.engine, body)
        added = store.put_part(self.engine, principal, "source", name, body["sourceName"], body)
        return reply(store.view(self.engine, name)["sources"][body["sourceName"]], 201 if added else 200)

    def add_pipeline(self, name: str, body: dict[str, Any]) -> Reply:
        principal, _ = self._owned(name)
        added = store.put_part(self.engine, principal, "pipeline", name, body["pipelineName"], body)
        found = next(p for p in store.view(self.engine, name)["pipelines"] if p["pipelineName"] == body["pipelineName"])
        return reply(found, 201 if added else 200)

    def add_serving(self, name: str, body: dict[str, Any]) -> Reply:
        principal, owner = self._owned(name)
        resources = {r.name for r in self.runtime.current.generation.resources}
        resource = check_serving(body, resources)
        if resource is not None:
            self._may_serve(principal, name, owner, resource)
        added = store.put_part(self.engine, principal, "serving", name, body["servingName"], body,
                               serving_type=body["servingType"])
        return reply(store.view(self.engine, name)["servings"][body["servingName"]], 201 if added else 200)

    def _may_serve(self, principal: Principal, product: str, owner: str, resource: str) -> None:
        """A product serves a resource that is in no other product and belongs to its owner (or to no team)."""
        entry = catalog(self.engine).resource(resource)
        if entry is None:
            return
        if entry.product not in (None, product):
            raise conflict(f"Resource {resource!r} belongs to data product {entry.product!r}", pointer="/schemaId")
        if entry.owner not in (None, owner) and not principal.admin:
            raise forbidden(f"Resource {resource!r} belongs to team {entry.owner}, not {owner}")

    # -- access --------------------------------------------------------------------------------------------

    def grant_access(self, name: str, body: dict[str, Any]) -> Reply:
        principal, _ = self._owned(name)
        self._check_servings(name, body["servings"])
        store.grant(self.engine, principal, name, body["grantee"], body["servings"])
        return reply({"dataProductName": name, "access": store.view(self.engine, name)["access"]})

    def revoke_access(self, name: str, body: dict[str, Any]) -> Reply:
        principal, _ = self._owned(name)
        self._check_servings(name, body["servings"])
        self._revoke(principal, name, body["grantee"], body["servings"])
        return reply({"dataProductName": name, "access": store.view(self.engine, name)["access"]})

    def revoke_grant(self, name: str, grantee: str, serving: str) -> tuple[str, int]:
        principal, _ = self._owned(name)
        self._revoke(principal, name, grantee, [serving])
        return "", 204

    def _check_servings(self, name: str, wanted: list[str]) -> None:
        known = store.serving_names(self.engine, name)
        issues = [Issue(f"/servings/{i}", f"data product {name!r} has no serving {s!r}")
                  for i, s in enumerate(wanted) if s not in known]
        if issues:
            raise bad_request("Unknown servings", issues)

    def _revoke(self, principal: Principal, name: str, grantee: str, wanted: list[str]) -> None:
        missing = sorted(set(wanted) - store.granted(self.engine, name, grantee))
        if missing:
            raise not_found(f"Team {grantee} holds no grant of {', '.join(map(repr, missing))} on {name!r}")
        store.revoke(self.engine, principal, name, grantee, wanted)

    def get_policy(self, name: str, team: str) -> Reply:
        principal = caller()
        require_caller(principal)
        product = store.view(self.engine, name)
        if not (principal.admin or principal.member_of(product["owner"]) or principal.member_of(team)):
            raise forbidden(f"Only team {team}, the owner {product['owner']} or an admin may read this policy")
        return reply(team_policy(product, team))

    # -- audit ---------------------------------------------------------------------------------------------

    def product_logs(self, name: str, offset: int = 0, limit: int = 50) -> Reply:
        principal = caller()
        require_caller(principal)
        require_owner_read(principal, name, store.owner_of(self.engine, name))
        found, total = audit.entries(self.engine, product=name, offset=offset, limit=limit)
        return reply({"entries": found, "total": total, "offset": offset, "limit": limit})

    def audit_log(self, offset: int = 0, limit: int = 50) -> Reply:
        principal = caller()
        require_caller(principal)
        visible = None if principal.admin else catalog(self.engine).products_owned_by(principal.teams)
        found, total = audit.entries(self.engine, visible_products=visible, visible_teams=principal.teams,
                                     offset=offset, limit=limit)
        return reply({"entries": found, "total": total, "offset": offset, "limit": limit})

    # -- team keys -----------------------------------------------------------------------------------------

    def list_keys(self, team: str) -> Reply:
        principal = caller()
        require_caller(principal)
        if not (principal.admin or principal.member_of(team)):
            raise forbidden(f"Only members of team {team} or an admin may see its keys")
        return reply({"team": team, "keys": credentials.list_keys(self.engine, team)})

    def mint_key(self, team: str) -> Reply:
        require_team(caller(), team)
        return reply(credentials.mint(self.engine, caller(), team), 201)

    def rotate_key(self, team: str) -> Reply:
        require_team(caller(), team)
        return reply(credentials.rotate(self.engine, caller(), team), 201)

    def revoke_keys(self, team: str) -> tuple[str, int]:
        require_team(caller(), team)
        credentials.revoke(self.engine, caller(), team)
        return "", 204

    def revoke_key(self, team: str, key_id: str) -> tuple[str, int]:
        require_team(caller(), team)
        credentials.revoke(self.engine, caller(), team, key_id)
        return "", 204

