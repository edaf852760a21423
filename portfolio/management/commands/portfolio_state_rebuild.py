"""Rebuild the stored holdings state (PositionState, DailyFlow) of portfolios from their whole
histories: after transactions were changed around the services, e.g. by hand in the database."""

from django.core.management.base import BaseCommand

from portfolio.models import Portfolio
from portfolio.services import portfolio_state_rebuild


class Command(BaseCommand):
    help = "Rebuild the stored holdings state of every portfolio (or of the ids given) from its transactions."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="portfolio ids (default: all)")

    def handle(self, *args, ids, **options):
        portfolios = Portfolio.objects.filter(id__in=ids) if ids else Portfolio.objects.all()
        count = 0
        for portfolio in portfolios.iterator():
            portfolio_state_rebuild(portfolio=portfolio)
            count += 1
        self.stdout.write(f"Rebuilt the state of {count} portfolio(s).")
