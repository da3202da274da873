"""The inference service's Prometheus metrics: the scaling signal for the autoscaler.

In the service's registry (served at `/metrics` with the platform's HTTP metrics):

- `tessera_inference_triton_request_seconds{model, outcome}`: each request to Triton,
  from sending to the answer (retries included); `outcome` is "ok" or the error's class.
- `tessera_inference_batch_size{model}`: the frames each request to Triton carried.
- `tessera_inference_images_total{model}`: frames Triton answered; images per second is
  `rate(tessera_inference_images_total[1m])`.
- `tessera_inference_pending_frames{model}`: frames waiting in this replica's batcher
  for a batch (a queue depth in front of Triton).

The auto-annotation queue's depth and this replica's running requests are the platform's
`tessera_workqueue_*` gauges (`tessera.platform.workqueue.QueueMetrics`, labels
`stream="INFERENCE"`, `consumer="inference-annotate"`), registered by the app; the chart's
README ("Scaling signals") lists them with the streams and consumers an autoscaler reads.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tessera.inference.triton import FrameBatcher

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class InferenceMetrics:
    """The collectors above, registered in a service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.triton_seconds = Histogram(
            "tessera_inference_triton_request_seconds",
            "Requests to Triton, from sending to the answer (retries included)",
            ["model", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "tessera_inference_batch_size",
            "Frames per request to Triton",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.images = Counter(
            "tessera_inference_images",
            "Frames Triton answered",
            ["model"],
            registry=registry,
        )
        self.pending = Gauge(
            "tessera_inference_pending_frames",
            "Frames waiting in this replica's batcher for a batch",
            ["model"],
            registry=registry,
        )

    def observe_request(self, model: str, batch: int, seconds: float, outcome: str) -> None:
        """A request to Triton ended (`TritonClient(on_request=...)`)."""
        self.triton_seconds.labels(model, outcome).observe(seconds)
        if outcome == "ok":
            self.batch_size.labels(model).observe(batch)
            self.images.labels(model).inc(batch)

    def watch(self, batcher: FrameBatcher) -> None:
        """Report a batcher's waiting frames at each scrape."""
        self.pending.labels(batcher.model).set_function(lambda: batcher.pending)
