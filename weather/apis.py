import math
from collections.abc import Sequence

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.api import AnyContentTypeJSONParser, StrictCharField
from commsplatform.common_case import (
    CommonCaseView,
    cached_caller_permitted,
    counted_throttles,
    plain_json,
    rendered_error,
    rendered_json,
    throttled,
    throttled_answer,
)
from commsplatform.errors import ServiceUnavailable
from commsplatform.permissions import HasPerm
from workers.publish import RateExceeded, RateWindow

from .health import check_weather_circuit
from .resilience import RETRYABLE, CircuitOpen
from .selectors import forecast_sample_list, weather_status
from .services import ForecastTimeout, forecast_request


class GatewayTimeout(exceptions.APIException):
    status_code = 504
    default_detail = "No forecast arrived in time."
    default_code = "gateway_timeout"


def request_forecast(*, city: str, location: str, rate_windows: Sequence[RateWindow] = ()) -> dict:
    """Call the service and turn its failures into the API's 503/504 answers (a full
    rate window stays RateExceeded)."""
    try:
        return forecast_request(city=city, location=location, rate_windows=rate_windows)
    except CircuitOpen as exc:
        raise ServiceUnavailable(
            f"The weather service is temporarily unavailable: {exc}",
            retry_after=max(1, math.ceil(exc.retry_after)),
        ) from exc
    except RETRYABLE as exc:
        raise ServiceUnavailable("Redis is unreachable; the forecast request was not sent. Retry shortly.") from exc
    except ForecastTimeout as exc:
        raise GatewayTimeout(
            f"No forecast within {exc.timeout:g} s for request {exc.request_id}: "
            "the weather terminals are down or overloaded. Retry later."
        ) from exc


_TEXT_MAX_LENGTH = 200


class ForecastInputSerializer(serializers.Serializer):
    city = StrictCharField(max_length=_TEXT_MAX_LENGTH, error_messages={"invalid": "Must be a string."})
    location = StrictCharField(max_length=_TEXT_MAX_LENGTH, required=False, allow_blank=True, default="")

    class Meta:
        ref_name = "WeatherForecastRequest"


class WeatherForecastCityApi(CommonCaseView, APIView):
    """Seed route `POST /WeatherForecast/city`: ask a terminal for a city's forecast.

    The common case (commsplatform.common_case: a token this process verified, the
    permission, the throttles allowing, a UTF-8 body `{"city": …, "location": …}` the
    ForecastInputSerializer would take unchanged) is answered without DRF's request
    wrapping, content negotiation and serializer: the same service, the same answer and
    the same JSON errors (503, 504, 429). Anything else goes through the DRF view below.
    """

    permission_classes = [HasPerm("weather.request_forecast")]

    # The terminal writes the seed's body itself (weather.services.forecast_replies); the
    # answer passes these fields on in this order. OutputSerializer documents them: running
    # it on every reply cost more CPU than the request's XADD.
    SEED_FIELDS = ("city", "location", "forecastTime", "temperature", "condition", "humidity", "windSpeed", "requestId")

    parser_classes = [AnyContentTypeJSONParser]

    class OutputSerializer(serializers.Serializer):
        city = serializers.CharField()
        location = serializers.CharField(allow_blank=True)
        forecastTime = serializers.CharField()  # noqa: N815 (the seed's field names)
        temperature = serializers.FloatField()
        condition = serializers.CharField()
        humidity = serializers.IntegerField()
        windSpeed = serializers.FloatField()  # noqa: N815
        requestId = serializers.CharField()  # noqa: N815

        class Meta:
            ref_name = "SeedWeatherForecast"

    @extend_schema(
        request=ForecastInputSerializer,
        responses={200: OutputSerializer},
        operation_id="seed_weather_forecast_city",
        tags=["seed"],
    )
    def post(self, request):
        serializer = ForecastInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reply = request_forecast(**serializer.validated_data)
        return Response({name: reply.get(name) for name in self.SEED_FIELDS}, status=status.HTTP_200_OK)

    @classmethod
    def common_case(cls, request) -> HttpResponse | None:
        """The answer to a common-case request, or None (nothing done: the DRF view answers it)."""
        if not cached_caller_permitted(cls, request):
            return None
        asked = _plain_forecast_input(request)
        if asked is None:
            return None
        counted = counted_throttles(cls, request)  # checked with the request's XADD, or first
        response = throttled(cls, request) if counted is None else None
        if response is None:
            try:
                reply = request_forecast(
                    city=asked[0], location=asked[1], rate_windows=counted.windows if counted is not None else ()
                )
            except RateExceeded as exceeded:  # only a counted publish is refused this way
                response = throttled_answer(counted.refused(exceeded) if counted is not None else [])
            except exceptions.APIException as exc:  # 503 and 504, as the DRF path answers them
                response = rendered_error(exc)
            else:
                body = rendered_json({name: reply.get(name) for name in cls.SEED_FIELDS})
                response = HttpResponse(body, content_type="application/json")
        response["Allow"] = "POST, OPTIONS"  # as DRF's default response headers
        return response


def _plain_forecast_input(request) -> tuple[str, str] | None:
    """(city, location) when the ForecastInputSerializer would take the body as it is
    (location defaulting to ""), else None."""
    data = plain_json(request)
    # Only these keys: anything else (nesting past API_JSON_MAX_DEPTH too) is the parser's to judge.
    if type(data) is not dict or "city" not in data or not 1 <= len(data) <= 2:
        return None
    city, location = data["city"], data.get("location", "")
    if len(data) == 2 and "location" not in data:
        return None
    if not _plain_text(city) or not city or not _plain_text(location):
        return None
    return city, location


def _plain_text(value: object) -> bool:
    """A str the StrictCharField takes unchanged: at most 200 characters, no surrounding
    whitespace (it trims), no NUL, no lone surrogates (it refuses them)."""
    return (
        type(value) is str
        and len(value) <= _TEXT_MAX_LENGTH
        and value == value.strip()
        and "\x00" not in value
        and (value.isascii() or not any(0xD800 <= ord(c) <= 0xDFFF for c in value))
    )


class WeatherForecastSampleApi(APIView):
    """Seed route `GET /WeatherForecast`: five sample forecasts (the .NET template's)."""

    permission_classes = [HasPerm("weather.request_forecast")]

    class OutputSerializer(serializers.Serializer):
        date = serializers.CharField()
        temperatureC = serializers.IntegerField()  # noqa: N815
        temperatureF = serializers.IntegerField()  # noqa: N815
        summary = serializers.CharField()

        class Meta:
            ref_name = "SeedWeatherSample"

    @extend_schema(responses=OutputSerializer(many=True), operation_id="seed_weather_forecast_samples", tags=["seed"])
    def get(self, request):
        return Response(self.OutputSerializer(forecast_sample_list(), many=True).data)


class WeatherHealthApi(APIView):
    """Seed route `GET /WeatherForecast/health`: Healthy unless the Redis circuit is open."""

    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(responses={200: dict, 503: dict}, operation_id="seed_weather_health", tags=["seed"])
    def get(self, request):
        result = check_weather_circuit()
        body = {"status": "Healthy" if result.ok else "Unhealthy", **result.details}
        return Response(body, status=200 if result.ok else 503)


class WeatherStatusApi(APIView):
    """Seed route `GET /WeatherForecast/status`: breaker, reply listener, pending requests, queue."""

    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(responses={200: dict}, operation_id="seed_weather_status", tags=["seed"])
    def get(self, request):
        return Response(weather_status())


class ForecastCreateApi(APIView):
    """Ask a weather terminal for a city's forecast (request/reply over Redis Streams).

    503 while the Redis circuit breaker is open; 504 when no terminal answers in time.
    """

    permission_classes = [HasPerm("weather.request_forecast")]

    class OutputSerializer(serializers.Serializer):
        request_id = serializers.CharField(source="requestId")
        city = serializers.CharField()
        location = serializers.CharField(allow_blank=True)
        forecast_time = serializers.DateTimeField(source="forecastTime")
        temperature = serializers.FloatField(help_text="°C")
        condition = serializers.CharField()
        humidity = serializers.IntegerField(help_text="%")
        wind_speed = serializers.FloatField(source="windSpeed", help_text="km/h")

        class Meta:
            ref_name = "WeatherForecast"

    @extend_schema(
        request=ForecastInputSerializer,
        responses={200: OutputSerializer},
        operation_id="weather_forecast_create",
    )
    def post(self, request):
        serializer = ForecastInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reply = request_forecast(**serializer.validated_data)
        return Response(self.OutputSerializer(reply).data, status=status.HTTP_200_OK)
