import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# The lease of an open live session was called LiveSession, like the bridge's own class.
RELATIONS = (("conversation", "assistant.conversation"), ("user", settings.AUTH_USER_MODEL))


class Migration(migrations.Migration):
    dependencies = [
        ("assistant", "0001_initial"),
    ]

    # The table keeps its name (no rename in the database): workers of the previous release
    # go on taking and renewing leases during a rolling deploy.
    operations = [
        migrations.AlterModelTable(name="livesession", table="assistant_livesession"),
        migrations.RenameModel(old_name="LiveSession", new_name="SessionLease"),
        *(
            migrations.AlterField(
                model_name="sessionlease",
                name=name,
                field=models.ForeignKey(
                    on_delete=django.db.models.deletion.CASCADE,
                    related_name="session_leases",
                    to=target,
                ),
            )
            for name, target in RELATIONS
        ),
    ]
