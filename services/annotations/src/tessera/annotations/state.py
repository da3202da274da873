"""What the annotations service runs for its lifetime besides the platform, and the typed
dependencies that give its parts to the routers."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tessera.annotations.webhooks.delivery import Deliverer
from tessera.platform.service import service_state


@dataclass(frozen=True)
class AnnotationsState:
    """The service's own running parts (the app's `state.service`)."""

    deliverer: Deliverer


def webhook_deliverer(request: Request) -> Deliverer:
    """The running webhook `Deliverer` of the app serving `request`."""
    return service_state(request, AnnotationsState).deliverer


RunningDeliverer = Annotated[Deliverer, Depends(webhook_deliverer)]
