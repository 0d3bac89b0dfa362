"""Just-in-time AWS IoT Core things for chargers, so the back end sees each charger as a thing.

The thing is named after the charger id; its thing type is derived from vendor and model and its thing
group from the vendor, once those are known (BootNotification). Every step accepts what already exists,
so running it again, from any adapter instance, is harmless. The IoT control plane is rate limited and
slow, so calls run off the event loop with adaptive retries, and each (id, vendor, model) is done once
per process.
"""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)
_THING_NAME = re.compile(r"[A-Za-z0-9:_-]{1,128}")
_UNSAFE = re.compile(r"[^A-Za-z0-9:_-]+")


def _name(*parts: str) -> str:
    return _UNSAFE.sub("_", "-".join(parts))[:128]


def thing_type_name(vendor: str | None, model: str | None) -> str | None:
    return _name(vendor, model) if vendor and model else None


def thing_group_name(vendor: str | None) -> str | None:
    return _name(vendor) if vendor else None


def _exists(err: ClientError) -> bool:
    return bool(err.response.get("Error", {}).get("Code") == "ResourceAlreadyExistsException")


class ThingProvisioner:
    def __init__(self, iot_client: Any) -> None:
        self._iot = iot_client
        self._done: set[tuple[str, str | None, str | None]] = set()
        # Its own threads: throttled IoT calls retrying for seconds must not hold the default executor, where
        # the handshakes hash passwords.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="iot-provisioning")

    @classmethod
    def create(cls, region_name: str | None = None) -> ThingProvisioner:
        config = Config(retries={"mode": "adaptive", "max_attempts": 10})
        return cls(boto3.client("iot", region_name=region_name, config=config))

    def provision(self, charger_id: str, vendor: str | None = None, model: str | None = None) -> str:
        """Create (or complete) the charger's thing; returns its ARN. Blocking: call off-loop."""
        if not _THING_NAME.fullmatch(charger_id):
            raise ValueError(f"charger id {charger_id!r} is not a valid IoT thing name ([A-Za-z0-9:_-])")
        thing_type, group = thing_type_name(vendor, model), thing_group_name(vendor)
        if thing_type:
            self._create_ignoring_existing(self._iot.create_thing_type, thingTypeName=thing_type)
        if group:
            self._create_ignoring_existing(self._iot.create_thing_group, thingGroupName=group)
        kwargs = {"thingName": charger_id, **({"thingTypeName": thing_type} if thing_type else {})}
        try:
            arn = str(self._iot.create_thing(**kwargs)["thingArn"])
        except ClientError as err:  # exists with other properties, e.g. created before the boot told us the type
            if not _exists(err):
                raise
            if thing_type:
                self._iot.update_thing(thingName=charger_id, thingTypeName=thing_type)
            arn = str(self._iot.describe_thing(thingName=charger_id)["thingArn"])
        if group:
            self._iot.add_thing_to_thing_group(thingGroupName=group, thingName=charger_id)
        return arn

    @staticmethod
    def _create_ignoring_existing(create: Any, **kwargs: str) -> None:
        try:
            create(**kwargs)
        except ClientError as err:
            if not _exists(err):
                raise

    async def ensure(self, charger_id: str, vendor: str | None = None, model: str | None = None) -> bool:
        """``provision`` off-loop, once per (id, vendor, model) per process. Never raises: a failure is
        logged and returns False, so provisioning trouble cannot refuse a charger."""
        key = (charger_id, vendor, model)
        if key in self._done:
            return True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self.provision, charger_id, vendor,
                                                             model)
        except (ClientError, BotoCoreError, ValueError):
            log.warning("IoT provisioning failed for %s", charger_id, exc_info=True)
            return False
        self._done.add(key)
        return True
