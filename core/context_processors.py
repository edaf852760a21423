from django.conf import settings


def chartjs(request):
    return {
        "chartjs": {
            "source": settings.CHARTJS_SOURCE,
            "cdn_url": settings.CHARTJS_CDN_URL,
            "sri": settings.CHARTJS_SRI,
        }
    }
