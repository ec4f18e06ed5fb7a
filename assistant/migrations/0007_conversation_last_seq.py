"""Conversation.last_seq: the highest event seq, so that a batch is numbered in one statement
(services.conversation_record). Existing conversations take their events' MAX(seq)."""

from django.db import migrations, models
from django.db.models import Max, OuterRef, Subquery
from django.db.models.functions import Coalesce


def backfill(apps, schema_editor):
    Conversation = apps.get_model("assistant", "Conversation")
    ConversationEvent = apps.get_model("assistant", "ConversationEvent")
    highest = (
        ConversationEvent.objects.filter(conversation=OuterRef("pk"))
        .values("conversation")
        .annotate(m=Max("seq"))
        .values("m")
    )
    Conversation.objects.update(last_seq=Coalesce(Subquery(highest), 0))


class Migration(migrations.Migration):
    dependencies = [
        ("assistant", "0006_user_standing_instructions"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="last_seq",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
