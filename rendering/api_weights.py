"""`GET /api/v1/layers/<id>/weights/`: the weight matrix into a layer from the one before,
as numbers (the page's .npy download holds the same float16 values)."""

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from microscope_site.api_queries import StrictQueryParams
from neurons.models import Layer, NetworkModel
from neurons.serializers import absolute, model_ref
from rendering.connections import strength_matrix
from rendering.models import LayerConnection


class LayerWeightsSerializer(serializers.Serializer[dict[str, Any]]):
    layer = serializers.URLField(help_text="the target layer")
    source = serializers.CharField(help_text="the source layer's name")
    target = serializers.CharField(help_text="the target layer's name")
    source_layer = serializers.URLField()
    method = serializers.CharField(help_text="direct (one convolution) or expanded")
    kernel_size = serializers.IntegerField()
    shape = serializers.ListField(child=serializers.IntegerField(), help_text="[targets, sources]")
    strength = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="strength[target][source]: the kernel's L2 norm signed by its sum",
    )
    npy_url = serializers.URLField(help_text="the same numbers as a float16 .npy file")
    html_url = serializers.URLField(help_text="the interactive matrix page")


class LayerWeightsView(generics.GenericAPIView[Layer]):
    """The strengths from every unit of the layer before (columns) into every unit of this
    layer (rows), by unit index; 404 until the pair's connections have been computed."""

    queryset = Layer.objects.filter(model__status=NetworkModel.Status.READY).select_related("model")
    serializer_class = LayerWeightsSerializer
    pagination_class = None
    filter_backends: list[Any] = [StrictQueryParams]  # an unknown parameter is a 400

    @extend_schema(summary="The weight matrix into a layer")
    def get(self, request: Request, pk: int) -> Response:
        layer = self.get_object()
        pair = LayerConnection.objects.filter(target=layer).select_related("source").first()
        if pair is None:
            raise NotFound(f"no weights into {layer} have been computed yet")
        matrix = strength_matrix(pair)
        ref = model_ref(layer.model)
        kwargs = {"model": ref, "layer": layer.name}
        context = {"request": request}
        return Response(
            {
                "layer": absolute(context, reverse("api:layer-detail", kwargs={"pk": layer.pk})),
                "source": pair.source.name,
                "target": layer.name,
                "source_layer": absolute(
                    context, reverse("api:layer-detail", kwargs={"pk": pair.source_id})
                ),
                "method": pair.method,
                "kernel_size": pair.kernel_size,
                "shape": list(matrix.shape),
                "strength": matrix.round(6).tolist(),
                "npy_url": absolute(context, reverse("rendering:layer-weights-npy", kwargs=kwargs)),
                "html_url": absolute(context, reverse("rendering:layer-weights", kwargs=kwargs)),
            }
        )
