"""Use cases of scenes: several devices of a home set in one tap; saved only when every value fits its spec."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import delete, func, select

from ecohub.auth import Principal
from ecohub.automate.models import Scene
from ecohub.automate.parse import action_doc, parse_action
from ecohub.automate.resolver import HomeResolver
from ecohub.connect.service import DeviceService
from ecohub.ecosystem.service import ProductService
from ecohub.errors import Conflict, ErrorCode, InvalidInput, NotFound
from ecohub.home.domain import HomeRole
from ecohub.home.homes import HomeService
from ecohub.store import Databases, aware

MAX_SCENES_PER_HOME = 100
MAX_DEVICES_PER_SCENE = 50


class SceneService:
    """Scenes of a home: owners and members save, run and delete them; guests see them."""

    def __init__(self, dbs: Databases, *, homes: HomeService, devices: DeviceService,
                 products: ProductService) -> None:
        self.dbs = dbs
        self.homes = homes
        self.devices = devices
        self.products = products

    def create(self, p: Principal, home_id: str, name: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
        """Save a scene: `actions` are `{"did", "values": {property: value}}`, each checked against its spec."""
        self.homes.require(p, home_id, HomeRole.MEMBER)
        name = (name or "").strip()
        if not 1 <= len(name) <= 100:
            raise InvalidInput("a scene's name is 1 to 100 characters", code=ErrorCode.INVALID_SCENE, path="name")
        if not 1 <= len(actions) <= MAX_DEVICES_PER_SCENE:
            raise InvalidInput(f"a scene sets 1 to {MAX_DEVICES_PER_SCENE} devices", code=ErrorCode.INVALID_SCENE,
                               path="actions")
        resolver = HomeResolver(p, home_id, homes=self.homes, devices=self.devices, products=self.products)
        docs = [action_doc(parse_action({"type": "set", **a}, f"actions[{i}]", resolver))
                for i, a in enumerate(actions)]
        scene_id = secrets.token_hex(8)
        with self.dbs.cell_session(self.homes.cell_of(p)) as s:
            count = s.scalar(select(func.count()).select_from(Scene).where(Scene.home_id == home_id))
            if (count or 0) >= MAX_SCENES_PER_HOME:
                raise Conflict(f"a home holds at most {MAX_SCENES_PER_HOME} scenes", code=ErrorCode.TOO_MANY_SCENES)
            s.add(Scene(id=scene_id, home_id=home_id, name=name, actions=docs, created_by=p.subject))
        return self.get(p, scene_id)

    @staticmethod
    def view(row: Scene) -> dict[str, Any]:
        """A scene as the console and API show it."""
        return {"scene_id": row.id, "home_id": row.home_id, "name": row.name, "actions": row.actions,
                "created_by": row.created_by, "created_at": aware(row.created_at).isoformat()}

    def _row(self, p: Principal, scene_id: str, least: HomeRole) -> Scene:
        with self.dbs.cell_session(self.homes.cell_of(p)) as s:
            row = s.get(Scene, scene_id)
        if row is None:
            raise NotFound(f"no scene {scene_id}", code=ErrorCode.UNKNOWN_SCENE)
        self.homes.require(p, row.home_id, least)
        return row

    def get(self, p: Principal, scene_id: str) -> dict[str, Any]:
        """One scene (anyone in its home)."""
        return self.view(self._row(p, scene_id, HomeRole.GUEST))

    def of_home(self, p: Principal, home_id: str) -> list[dict[str, Any]]:
        """The home's scenes, oldest first (anyone in the home)."""
        self.homes.require(p, home_id, HomeRole.GUEST)
        with self.dbs.cell_session(self.homes.cell_of(p)) as s:
            rows = s.scalars(select(Scene).where(Scene.home_id == home_id).order_by(Scene.created_at)).all()
        return [self.view(r) for r in rows]

    def plan(self, p: Principal, scene_id: str) -> list[dict[str, Any]]:
        """What running the scene sets (owners and members): its actions, for the caller to send."""
        return list(self._row(p, scene_id, HomeRole.MEMBER).actions)

    def delete(self, p: Principal, scene_id: str) -> None:
        """Delete a scene (owners and members)."""
        row = self._row(p, scene_id, HomeRole.MEMBER)
        with self.dbs.cell_session(self.homes.cell_of(p)) as s:
            s.execute(delete(Scene).where(Scene.id == row.id))
