from django.db import migrations


class Migration(migrations.Migration):
    """ApiToken moves to the accounts app: only Django's idea of where the model lives changes here;
    the table and its rows stay, and accounts.0001 takes them over."""

    dependencies = [
        ("portfolio", "0002_api_token"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="ApiToken")]),
    ]
