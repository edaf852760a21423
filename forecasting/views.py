from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render

from .models import Asset
from .selectors.market_data import RANGES, price_history


@login_required
def asset_list(request):
    assets = Asset.objects.filter(tracked=True)
    return render(request, "forecasting/asset_list.html", {"assets": assets})


@login_required
def asset_detail(request, symbol: str):
    asset = get_object_or_404(Asset, symbol=symbol.upper())
    range_key = request.GET.get("range", "30d")
    if range_key not in RANGES:
        range_key = "30d"
    history = price_history(asset=asset, range_key=range_key)
    return render(
        request,
        "forecasting/asset_detail.html",
        {"asset": asset, "history": history, "ranges": list(RANGES), "range_key": range_key},
    )


@login_required
def asset_prices_json(request, symbol: str):
    asset = get_object_or_404(Asset, symbol=symbol.upper())
    range_key = request.GET.get("range", "30d")
    if range_key not in RANGES:
        return JsonResponse(
            {"error": f"Unknown range {range_key!r}; use one of {', '.join(RANGES)}."}, status=400
        )
    history = price_history(asset=asset, range_key=range_key)
    history["newest"] = history["newest"].isoformat() if history["newest"] else None
    return JsonResponse(history)


