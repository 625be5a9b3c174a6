"""The labelled conversations: happy paths, every friction kind, hard negatives; en/de/fr/es.

Labels say what a careful reader of the conversation would call friction, by the kinds'
definitions in ``processors/friction/stage.py``; they were written before the detector was
tuned on them and are not changed to fit it. ``silence`` is labelled on a conversation that
idles out right after misalignment or stagnation.
"""

from __future__ import annotations

from frictionlens import semconv as S
from tests.scenarios.friction_model import (
    CLOSE,
    SESSION,
    STATELESS,
    Scenario,
    abandon,
    edit,
    error,
    feedback,
    regenerate,
    retry,
    say,
)

REPHRASE = S.FRICTION_REPHRASE
CORRECTION = S.FRICTION_CORRECTION
NEGATIVE = S.FRICTION_NEGATIVE_FEEDBACK
REPEAT = S.FRICTION_REPEAT
LOOP = S.FRICTION_LOOP
GIVE_UP = S.FRICTION_GIVE_UP
SILENCE = frozenset({S.FRICTION_SILENCE})
#: hard negatives: conversations that look like friction to a naive detector and are not
HARD = frozenset({"hard_negative"})

EN = "You are the assistant of an online service. Answer briefly and precisely."
DE = "Du bist der Assistent eines Online-Dienstes. Antworte kurz und präzise."
FR = "Tu es l'assistant d'un service en ligne. Réponds de façon brève et précise."
ES = "Eres el asistente de un servicio en línea. Responde de forma breve y precisa."

ENGLISH = [
    Scenario(
        "en_happy_followups",
        "en",
        (
            say(
                "How do I reset my password on the website?",
                "Click 'Forgot password' on the sign-in page, enter the email address of your account and open the link we send you. The link stays valid for 30 minutes.",
            ),
            say(
                "How long does the reset email usually take to arrive?",
                "Usually less than two minutes. If it has not arrived by then, look in your spam folder and make sure the address you typed is the one on your account.",
            ),
            say(
                "Can I change the email address on my account as well?",
                "Yes. Open Settings > Account > Email address, enter the new address and confirm it with the six-digit code we send to it.",
            ),
            say(
                "Perfect, thanks a lot!",
                "You're welcome! Let me know if there is anything else I can help with.",
            ),
        ),
        system=EN,
        tags=HARD,
        note="same-topic follow-ups are not rephrases",
    ),
    Scenario(
        "en_happy_template",
        "en",
        (
            say(
                "What time does the Louvre open on Saturdays?",
                "On Saturdays the Louvre opens at 9:00 and closes at 18:00; the last admission is one hour before closing.",
            ),
            say(
                "What time does the Musée d'Orsay open on Saturdays?",
                "The Musée d'Orsay opens at 9:30 on Saturdays and closes at 18:00. It is closed on Mondays.",
            ),
            say(
                "Which of the two is easier to reach from the Gare de Lyon?",
                "The Louvre: metro line 1 runs directly from Gare de Lyon to Palais Royal - Musée du Louvre in about ten minutes.",
            ),
        ),
        end=CLOSE,
        system=EN,
        tags=HARD,
        note="the same question about another museum is a new question, not a rephrase",
    ),
    Scenario(
        "en_happy_stateless",
        "en",
        (
            say(
                "Give me a quick recipe for tomato soup.",
                "Soften an onion and two garlic cloves in olive oil, add 800 g of chopped tomatoes and 500 ml of stock, simmer for 20 minutes, blend and season with salt, pepper and basil.",
            ),
            say(
                "Can I freeze it?",
                "Yes, it freezes well for up to three months. Let it cool completely, freeze it in portions and reheat it gently.",
            ),
            say(
                "What bread goes well with it?",
                "A crusty sourdough or a grilled cheese sandwich are classic partners; garlic bread works nicely too.",
            ),
        ),
        mode=STATELESS,
        system=EN,
    ),
    Scenario(
        "en_happy_feedback",
        "en",
        (
            say(
                "Write a regex that matches a US ZIP code.",
                "Use ^\\d{5}(-\\d{4})?$ : five digits, optionally followed by a hyphen and four more digits (ZIP+4).",
            ),
            feedback(S.FEEDBACK_THUMBS_UP),
            say(
                "And one for a Canadian postal code?",
                "Try ^[A-Za-z]\\d[A-Za-z][ -]?\\d[A-Za-z]\\d$ , which accepts forms like K1A 0B1 with or without the space.",
            ),
            feedback(S.FEEDBACK_COPY),
            feedback(0.9),
        ),
        mode=SESSION,
        end=CLOSE,
        system=EN,
    ),
    Scenario(
        "en_happy_negation",
        "en",
        (
            say(
                "Is there a fee for paying my invoice by credit card?",
                "No, card payments are free of charge. Bank transfers are free as well; only payments by cheque cost 2 euros. Do you have other questions about payments?",
            ),
            say(
                "No, that's all about payments. How do I download last month's invoice as a PDF?",
                "Go to Billing > Invoices, find last month's invoice in the list and click the PDF icon at the end of its row.",
            ),
            say("Got it, thank you.", "You're welcome, have a nice day!"),
        ),
        system=EN,
        tags=HARD,
        note="a 'no' that answers a question is not a correction",
    ),
    Scenario(
        "en_happy_short_replies",
        "en",
        (
            say(
                "Can you help me plan a three-day trip to Rome?",
                "Of course! Shall I start with a day-by-day itinerary covering the main sights?",
            ),
            say(
                "Yes, please.",
                "Day 1: Colosseum, Roman Forum and Palatine Hill. Day 2: Vatican Museums, St Peter's and Trastevere in the evening. Day 3: Pantheon, Trevi Fountain and Villa Borghese. Would you like restaurant tips as well?",
            ),
            say(
                "Yes, please!",
                "Try Da Enzo in Trastevere for Roman classics, Roscioli near Campo de' Fiori for carbonara and Giolitti near the Pantheon for gelato.",
            ),
        ),
        end=CLOSE,
        system=EN,
        tags=HARD,
        note="short acknowledgements repeat without restating a request",
    ),
    Scenario(
        "en_regenerate",
        "en",
        (
            say(
                "Suggest a name for my bakery in Brighton.",
                "How about 'Rise & Shine Bakery'? It is cheerful, easy to remember and hints at both bread and mornings.",
            ),
            regenerate(
                "What about 'The Brighton Crumb'? It ties the shop to the town and sounds cosy and local."
            ),
            say(
                "I like that one. Can you write a one-line slogan for it?",
                "'The Brighton Crumb: baked fresh by the sea, every single morning.'",
            ),
            say("Thanks, that's great.", "My pleasure, good luck with the opening!"),
        ),
        system=EN,
    ),
    Scenario(
        "en_regenerate_twice",
        "en",
        (
            say(
                "Write a short haiku about autumn rain.",
                "Grey drops on the leaves / the garden bows its tired head / summer slips away",
            ),
            regenerate(
                "Cold rain taps the glass / red maple leaves drift and fall / the kettle starts to sing"
            ),
            regenerate("Soft autumn drizzle / puddles hold the amber light / footsteps hurry home"),
            say(
                "The last one is perfect.",
                "Glad you like it! Happy to write more seasonal haiku whenever you want.",
            ),
        ),
        mode=SESSION,
        end=CLOSE,
        system=EN,
    ),
    Scenario(
        "en_edit",
        "en",
        (
            say(
                "I need a packing list for a trip.",
                "Sure! Where are you going, for how long, and what will you do there? With that I can tailor the list.",
            ),
            say(
                "A weekend in Edinburgh.",
                "For a weekend in Edinburgh pack a waterproof jacket, comfortable walking shoes, layers, an umbrella, a phone charger and an adapter for UK plugs.",
            ),
            edit(
                "A weekend in Edinburgh in January, mostly hiking in the Highlands.",
                "For January hiking in the Highlands bring waterproof boots, thermal base layers, a fleece, a shell jacket, gloves, a hat, a head torch and a map, plus a warm outfit for the evenings.",
            ),
            say(
                "Great, that covers it.",
                "Enjoy the trip and check the mountain weather forecast before each hike!",
            ),
        ),
        end=CLOSE,
        system=EN,
    ),
    Scenario(
        "en_retry",
        "en",
        (
            say(
                "Convert 3 cups of flour to grams.",
                "One cup of all-purpose flour weighs about 125 g, so 3 cups are roughly 375 g.",
            ),
            error("And 2 tablespoons of butter?"),
            retry("Two tablespoons of butter weigh about 28 g."),
            say("Thanks, that's what I needed.", "You're welcome, happy baking!"),
        ),
        system=EN,
    ),
    Scenario(
        "en_rephrase",
        "en",
        (
            say(
                "How do I export my contacts from the app?",
                "You can share a single contact from its detail page with the Share button.",
            ),
            say(
                "How do I export all of my contacts from the app at once, as one file?",
                "Open Settings > Contacts > Export, choose 'All contacts' and a format (vCard or CSV); the app saves one file with all of them.",
                REPHRASE,
            ),
        ),
        end_expect=SILENCE,
        system=EN,
    ),
    Scenario(
        "en_correction",
        "en",
        (
            say(
                "When is the next train to Munich?",
                "The next flight to Munich leaves at 14:35 from Terminal 2 and lands at 15:40.",
            ),
            say(
                "No, I meant the train, not a flight. From Berlin main station.",
                "The next ICE from Berlin Hbf to München Hbf leaves at 14:29 from platform 13 and arrives at 18:31.",
                CORRECTION,
            ),
            say("Perfect, thank you.", "Have a good trip!"),
        ),
        mode=SESSION,
        end=CLOSE,
        system=EN,
    ),
    Scenario(
        "en_correction_asked",
        "en",
        (
            say(
                "Summarise the plot of Hamlet in two sentences.",
                "Urged on by his wife and a prophecy, Macbeth murders King Duncan to take the throne of Scotland. Guilt and paranoia then drive him to more killings until he is overthrown.",
            ),
            say(
                "That's not what I asked, that's Macbeth. I want Hamlet.",
                "Prince Hamlet learns from his father's ghost that his uncle Claudius murdered the king and married his mother. His hesitant revenge ends in a duel in which nearly the whole court dies, Hamlet included.",
                CORRECTION,
            ),
        ),
        end=CLOSE,
        system=EN,
    ),
    Scenario(
        "en_negative",
        "en",
        (
            say(
                "Is the city library open on Sundays?",
                "Yes, the city library is open on Sundays from 10:00 to 17:00.",
            ),
            say(
                "That's wrong, I was there yesterday, a Sunday, and it was closed.",
                "I'm sorry, you're right: the city library is closed on Sundays. It opens Monday to Saturday from 9:00 to 19:00.",
                NEGATIVE,
            ),
            say("OK, good to know.", "Anything else I can look up for you?"),
        ),
        end=CLOSE,
        system=EN,
    ),
    Scenario(
        "en_repeat",
        "en",
        (
            say(
                "How do I cancel my subscription?",
                "Our premium plans include unlimited storage, priority support and early access to new features.",
            ),
            say(
                "How can I cancel my subscription?",
                "You can upgrade or downgrade your plan at any time from the Plans page.",
                REPHRASE,
            ),
            say(
                "Please just tell me how to cancel my subscription.",
                "To cancel, open Account > Subscription and click 'Cancel subscription'; you keep access until the end of the billing period.",
                REPEAT,
            ),
        ),
        end_expect=SILENCE,
        system=EN,
    ),
    Scenario(
        "en_loop",
        "en",
        (
            say(
                "My parcel hasn't arrived yet, what should I do?",
                "I'm sorry to hear that. Please check the tracking link in your confirmation email; deliveries can take up to five business days.",
            ),
            say(
                "It's been ten days and the tracking page shows no update at all.",
                "I'm sorry to hear that. Please check the tracking link in your confirmation email; deliveries can take up to five business days.",
                LOOP,
            ),
            say(
                "Can I get a refund instead?",
                "I'm sorry to hear that! Please check the tracking link in your confirmation e-mail; deliveries can take up to 5 business days.",
                LOOP,
            ),
        ),
        end=CLOSE,
        system=EN,
    ),
    Scenario(
        "en_stream_abandon",
        "en",
        (
            say(
                "Explain how HTTPS works.",
                "HTTPS is HTTP over TLS: browser and server agree on keys in a handshake, the server proves its identity with a certificate, and everything after that is encrypted.",
            ),
            abandon(
                "Explain the TLS handshake step by step in detail.",
                "Sure! Step 1: the client sends a ClientHello with the TLS versions and cipher suites it supports, plus a random number. Step 2: the server",
            ),
            say(
                "Just the short version please: what is the point of the handshake?",
                "It lets both sides agree on a shared secret key without ever sending it, and lets the client check the server's certificate, so nobody in between can read or fake the traffic.",
            ),
        ),
        end=CLOSE,
        system=EN,
    ),
    Scenario(
        "en_give_up",
        "en",
        (
            say(
                "Why does my printer say it's offline?",
                "Make sure the printer is switched on and connected to the same Wi-Fi network as your computer, then restart both.",
            ),
            say(
                "I did that and it still says offline.",
                "Try removing the printer in your system settings and adding it again, then print a test page.",
            ),
            say(
                "Forget it, I'll ask someone in IT support.",
                "Sorry I couldn't solve it. IT support can check the printer's network settings directly.",
                GIVE_UP,
            ),
        ),
        system=EN,
    ),
    Scenario(
        "en_give_up_stateless",
        "en",
        (
            say(
                "How do I merge two PDF files on a Mac?",
                "You can compress a PDF in Preview with File > Export and the Quartz filter 'Reduce File Size'.",
            ),
            say(
                "Never mind, this isn't getting anywhere.",
                "Sorry about that. Feel free to come back any time.",
                GIVE_UP,
            ),
        ),
        mode=STATELESS,
        end=CLOSE,
        system=EN,
    ),
    Scenario(
        "en_thumbs_down",
        "en",
        (
            say("Translate 'the meeting is postponed' into Italian.", "La riunione è cancellata."),
            feedback(S.FEEDBACK_THUMBS_DOWN, NEGATIVE),
        ),
        mode=SESSION,
        end=CLOSE,
        system=EN,
    ),
    Scenario(
        "en_low_rating",
        "en",
        (
            say(
                "Give me three ideas for a team offsite.",
                "1. A cooking class together. 2. A half-day hike with a picnic. 3. An escape room followed by dinner.",
            ),
            feedback(0.2, NEGATIVE),
        ),
        end_expect=SILENCE,
        system=EN,
    ),
]

GERMAN = [
    Scenario(
        "de_happy_followups",
        "de",
        (
            say(
                "Wie kann ich meine Rechnungsadresse im Kundenkonto ändern?",
                "Melden Sie sich an, öffnen Sie 'Mein Konto' > 'Adressen' und klicken Sie bei der Rechnungsadresse auf 'Bearbeiten'. Die Änderung gilt ab der nächsten Rechnung.",
            ),
            say(
                "Gilt das auch für Bestellungen, die schon unterwegs sind?",
                "Nein, bereits versendete Bestellungen behalten die alte Adresse. Für diese Rechnungen kann der Kundenservice eine Korrektur ausstellen.",
            ),
            say(
                "Und wie erreiche ich den Kundenservice am schnellsten?",
                "Am schnellsten per Chat in der App, werktags von 8 bis 20 Uhr. Telefonisch erreichen Sie uns unter der Nummer auf der Rechnung.",
            ),
            say(
                "Super, vielen Dank!",
                "Gern geschehen! Melden Sie sich, wenn Sie noch etwas brauchen.",
            ),
        ),
        system=DE,
        tags=HARD,
        note="Anschlussfragen zum selben Thema sind keine Umformulierung",
    ),
    Scenario(
        "de_happy_template",
        "de",
        (
            say(
                "Wie wird das Wetter morgen in Hamburg?",
                "Morgen wird es in Hamburg bewölkt mit gelegentlichem Regen bei höchstens 14 Grad; der Wind weht frisch aus Westen.",
            ),
            say(
                "Wie wird das Wetter morgen in München?",
                "In München bleibt es morgen überwiegend sonnig und trocken, mit bis zu 21 Grad am Nachmittag.",
            ),
        ),
        end=CLOSE,
        system=DE,
        tags=HARD,
        note="dieselbe Frage für eine andere Stadt ist eine neue Frage",
    ),
    Scenario(
        "de_happy_stateless",
        "de",
        (
            say(
                "Was kann ich heute Abend mit Kartoffeln und Lauch kochen?",
                "Eine Kartoffel-Lauch-Suppe: Lauch und Kartoffeln würfeln, in Butter andünsten, mit Brühe aufgießen, 20 Minuten köcheln lassen, pürieren und mit Muskat abschmecken.",
            ),
            say(
                "Kann man die Suppe auch vegan machen?",
                "Ja, nehmen Sie Olivenöl statt Butter, Gemüsebrühe und zum Schluss einen Schuss Hafersahne statt Sahne.",
            ),
            say(
                "Wie lange hält sie sich im Kühlschrank?",
                "Gut verschlossen hält sie sich drei bis vier Tage. Vor dem Essen einmal kräftig aufkochen.",
            ),
        ),
        mode=STATELESS,
        system=DE,
    ),
    Scenario(
        "de_happy_negation",
        "de",
        (
            say(
                "Muss ich für die Rücksendung etwas bezahlen?",
                "Nein, die Rücksendung ist innerhalb von 30 Tagen kostenlos. Haben Sie noch Fragen zur Rücksendung?",
            ),
            say(
                "Nein, danke. Aber wie lange dauert die Erstattung?",
                "Die Erstattung erfolgt innerhalb von 5 Werktagen, nachdem die Ware bei uns eingegangen ist.",
            ),
            feedback(S.FEEDBACK_THUMBS_UP),
        ),
        end=CLOSE,
        system=DE,
        tags=HARD,
        note="ein 'Nein' als Antwort ist keine Korrektur",
    ),
    Scenario(
        "de_regenerate",
        "de",
        (
            say(
                "Schreib mir eine kurze Geburtstagskarte für meine Kollegin Anna.",
                "Liebe Anna, alles Gute zum Geburtstag! Bleib so, wie du bist. Viele Grüße",
            ),
            regenerate(
                "Liebe Anna, zu deinem Geburtstag wünsche ich dir viel Freude, Gesundheit und ein tolles neues Lebensjahr. Danke, dass die Arbeit mit dir so viel Spaß macht! Herzliche Grüße"
            ),
            say("Die zweite ist schön, danke.", "Freut mich! Viel Spaß beim Feiern mit Anna."),
        ),
        mode=SESSION,
        end=CLOSE,
        system=DE,
    ),
    Scenario(
        "de_edit",
        "de",
        (
            say(
                "Ich suche ein Hotel.",
                "Gern! In welcher Stadt, für welche Daten und mit welchem Budget suchen Sie?",
            ),
            say(
                "In Wien, nächstes Wochenende.",
                "In Wien sind am nächsten Wochenende noch Zimmer im Hotel am Stephansplatz (ab 180 €) und im Motel One Westbahnhof (ab 95 €) frei.",
            ),
            edit(
                "In Wien, nächstes Wochenende, maximal 120 Euro pro Nacht und mit Frühstück.",
                "Mit Frühstück unter 120 € pro Nacht: das Motel One Westbahnhof (105 € inklusive Frühstück) und das Hotel Kummer an der Mariahilfer Straße (115 €).",
            ),
            say("Danke, das hilft.", "Gern, schönen Aufenthalt in Wien!"),
        ),
        system=DE,
    ),
    Scenario(
        "de_retry",
        "de",
        (
            say(
                "Wie viele Kalorien hat eine Banane?",
                "Eine mittelgroße Banane (etwa 120 g) hat rund 105 Kilokalorien.",
            ),
            error("Und ein Apfel?"),
            retry("Ein mittelgroßer Apfel (etwa 180 g) hat ungefähr 95 Kilokalorien."),
        ),
        mode=SESSION,
        end=CLOSE,
        system=DE,
    ),
    Scenario(
        "de_rephrase",
        "de",
        (
            say(
                "Wie richte ich eine Weiterleitung für meine E-Mails ein?",
                "Sie können in den Einstellungen eine Signatur für Ihre E-Mails festlegen.",
            ),
            say(
                "Wie kann ich meine E-Mails automatisch an eine andere Adresse weiterleiten?",
                "Öffnen Sie Einstellungen > E-Mail > Weiterleitung, geben Sie die Zieladresse ein und bestätigen Sie den Code, den wir an diese Adresse senden.",
                REPHRASE,
            ),
        ),
        end_expect=SILENCE,
        system=DE,
    ),
    Scenario(
        "de_correction",
        "de",
        (
            say(
                "Was kostet ein Monatsticket in Hamburg?",
                "Ein Monatsticket für den Hamburger Großbereich kostet im Abo etwa 125 Euro.",
            ),
            say(
                "Nein, ich meinte das Deutschlandticket, nicht das HVV-Ticket.",
                "Das Deutschlandticket kostet 58 Euro im Monat und gilt bundesweit im Nah- und Regionalverkehr.",
                CORRECTION,
            ),
            say("Danke.", "Gern geschehen!"),
        ),
        end=CLOSE,
        system=DE,
    ),
    Scenario(
        "de_correction_stateless",
        "de",
        (
            say(
                "Wie lange muss ich Spaghetti kochen?",
                "Reis braucht etwa 18 bis 20 Minuten bei kleiner Hitze mit geschlossenem Deckel.",
            ),
            say(
                "Das habe ich nicht gefragt, es ging um Spaghetti.",
                "Entschuldigung! Spaghetti brauchen je nach Sorte 8 bis 10 Minuten in reichlich Salzwasser; die Angabe auf der Packung ist ein guter Richtwert.",
                CORRECTION,
            ),
        ),
        mode=STATELESS,
        end=CLOSE,
        system=DE,
    ),
    Scenario(
        "de_negative",
        "de",
        (
            say(
                "Ist der 3. Oktober in allen Bundesländern ein Feiertag?",
                "Nein, der 3. Oktober ist nur in Bayern und Baden-Württemberg ein Feiertag.",
            ),
            say(
                "Das stimmt nicht, der Tag der Deutschen Einheit ist bundesweit frei.",
                "Sie haben recht, Entschuldigung: Der 3. Oktober ist als Tag der Deutschen Einheit in allen Bundesländern ein gesetzlicher Feiertag.",
                NEGATIVE,
            ),
        ),
        mode=SESSION,
        end_expect=SILENCE,
        system=DE,
    ),
    Scenario(
        "de_repeat",
        "de",
        (
            say(
                "Wie kündige ich meinen Handyvertrag?",
                "Unsere aktuellen Tarife finden Sie unter 'Tarife' in der App, zum Beispiel den Tarif Smart M mit 20 GB.",
            ),
            say(
                "Wie kann ich meinen Handyvertrag kündigen?",
                "Sie können Ihren Tarif jederzeit in der App wechseln.",
                REPHRASE,
            ),
            say(
                "Ich will meinen Handyvertrag kündigen, wie geht das?",
                "Die Kündigung geht in der App unter 'Vertrag' > 'Kündigen' oder schriftlich; die Frist beträgt einen Monat zum Ende der Mindestlaufzeit.",
                REPEAT,
            ),
        ),
        end=CLOSE,
        system=DE,
    ),
    Scenario(
        "de_loop",
        "de",
        (
            say(
                "Meine Waschmaschine zeigt den Fehler E18, was tun?",
                "Der Fehler E18 bedeutet, dass die Maschine nicht abpumpt. Reinigen Sie das Flusensieb unten rechts und prüfen Sie den Ablaufschlauch auf Knicke.",
            ),
            say(
                "Das Flusensieb ist sauber und der Schlauch hat keinen Knick.",
                "Der Fehler E18 bedeutet, dass die Maschine nicht abpumpt. Reinigen Sie bitte das Flusensieb unten rechts und prüfen Sie den Ablaufschlauch auf Knicke.",
                LOOP,
            ),
            say(
                "Gibt es sonst noch etwas, das ich prüfen kann?",
                "Der Fehler E18 bedeutet, dass die Maschine nicht abpumpt. Reinigen Sie das Flusensieb unten rechts und prüfen Sie den Ablaufschlauch auf Knicke!",
                LOOP,
            ),
        ),
        end=CLOSE,
        system=DE,
    ),
    Scenario(
        "de_stream_abandon",
        "de",
        (
            say(
                "Erklär mir, wie eine Wärmepumpe funktioniert.",
                "Eine Wärmepumpe entzieht der Umgebung Wärme, etwa der Luft oder dem Erdreich, hebt sie mit einem Verdichter auf ein höheres Temperaturniveau und gibt sie an die Heizung ab.",
            ),
            abandon(
                "Wie hoch sind die Kosten für ein Einfamilienhaus?",
                "Die Kosten hängen von vielen Faktoren ab. Zunächst muss man zwischen Luft-Wasser-, Sole-Wasser- und Wasser-Wasser-Wärmepumpen unterscheiden, denn",
            ),
            say(
                "Nur eine grobe Zahl bitte.",
                "Grob 25.000 bis 40.000 Euro inklusive Einbau; nach Abzug der Förderung oft deutlich weniger.",
            ),
        ),
        mode=SESSION,
        end=CLOSE,
        system=DE,
    ),
    Scenario(
        "de_give_up",
        "de",
        (
            say(
                "Warum lädt mein Laptop nicht mehr?",
                "Prüfen Sie, ob das Netzteil richtig eingesteckt ist und die Steckdose funktioniert.",
            ),
            say(
                "Das habe ich schon alles gemacht.",
                "Dann versuchen Sie ein anderes Ladekabel und setzen Sie das System-Management zurück.",
            ),
            say(
                "Vergiss es, ich bringe ihn einfach in die Werkstatt.",
                "Das ist eine gute Idee, dort kann man Akku und Ladebuchse direkt prüfen.",
                GIVE_UP,
            ),
        ),
        system=DE,
    ),
    Scenario(
        "de_thumbs_down",
        "de",
        (
            say(
                "Wie heißt die Hauptstadt von Australien?",
                "Die Hauptstadt von Australien ist Sydney.",
            ),
            feedback(S.FEEDBACK_THUMBS_DOWN, NEGATIVE),
        ),
        mode=SESSION,
        end=CLOSE,
        system=DE,
    ),
]

FRENCH = [
    Scenario(
        "fr_happy_followups",
        "fr",
        (
            say(
                "Comment puis-je modifier la date de ma réservation ?",
                "Dans 'Mes réservations', sélectionnez votre voyage puis 'Modifier la date'. Le changement est gratuit jusqu'à 48 heures avant le départ.",
            ),
            say(
                "Et si c'est moins de 48 heures avant le départ ?",
                "Dans ce cas, des frais de 15 € s'appliquent, plus l'éventuelle différence de tarif entre les deux trajets.",
            ),
            say(
                "Est-ce que je peux aussi ajouter un bagage en soute ?",
                "Oui, dans la même rubrique, choisissez 'Ajouter des bagages' ; un bagage de 23 kg coûte 25 € en ligne.",
            ),
            say("Parfait, merci beaucoup !", "Avec plaisir, bon voyage !"),
        ),
        system=FR,
        tags=HARD,
        note="des questions de suivi sur le même sujet ne sont pas des reformulations",
    ),
    Scenario(
        "fr_happy_stateless",
        "fr",
        (
            say(
                "Donne-moi une idée de dessert rapide avec des pommes.",
                "Des pommes poêlées : coupez deux pommes en quartiers, faites-les dorer au beurre avec du sucre et de la cannelle, puis servez avec une boule de glace à la vanille.",
            ),
            say(
                "Je peux remplacer le beurre ?",
                "Oui, de l'huile de coco ou une margarine végétale conviennent très bien et donnent un goût légèrement différent.",
            ),
        ),
        mode=STATELESS,
        end=CLOSE,
        system=FR,
    ),
    Scenario(
        "fr_happy_negation",
        "fr",
        (
            say(
                "Y a-t-il des frais pour payer en trois fois ?",
                "Non, le paiement en trois fois est sans frais pour les commandes de plus de 100 €. Souhaitez-vous savoir autre chose sur le paiement ?",
            ),
            say(
                "Non merci. Par contre, quand ma commande sera-t-elle expédiée ?",
                "Les commandes passées avant 14 heures sont expédiées le jour même ; vous recevrez un e-mail avec le numéro de suivi.",
            ),
        ),
        end=CLOSE,
        system=FR,
        tags=HARD,
        note="un 'non' qui répond à une question n'est pas une correction",
    ),
    Scenario(
        "fr_regenerate",
        "fr",
        (
            say(
                "Propose-moi un titre pour mon article sur le télétravail.",
                "Le télétravail : avantages et inconvénients",
            ),
            regenerate("Travailler de chez soi : la liberté a-t-elle un prix ?"),
            say("Super, je prends celui-là.", "Excellent choix, bonne rédaction !"),
        ),
        system=FR,
    ),
    Scenario(
        "fr_edit",
        "fr",
        (
            say(
                "Écris un message pour annuler un rendez-vous.",
                "Bonjour, je suis désolé mais je dois annuler notre rendez-vous de demain. Pourrions-nous en fixer un autre ? Cordialement",
            ),
            say(
                "C'est pour mon dentiste.",
                "Bonjour, je dois malheureusement annuler mon rendez-vous chez le Dr Martin prévu demain. Merci de me proposer une nouvelle date. Cordialement",
            ),
            edit(
                "C'est pour mon dentiste, le rendez-vous est jeudi à 10 h et je veux le reporter à la semaine prochaine.",
                "Bonjour, je ne pourrai pas venir à mon rendez-vous de jeudi à 10 h. Serait-il possible de le reporter à la semaine prochaine ? Merci d'avance, cordialement",
            ),
        ),
        mode=SESSION,
        end=CLOSE,
        system=FR,
    ),
    Scenario(
        "fr_retry",
        "fr",
        (
            say(
                "Combien de temps faut-il pour cuire un œuf mollet ?",
                "Six minutes dans l'eau bouillante, puis plongez l'œuf dans l'eau froide pour arrêter la cuisson.",
            ),
            error("Et un œuf dur ?"),
            retry(
                "Dix minutes dans l'eau bouillante, puis refroidissez-le sous l'eau froide avant de l'écaler."
            ),
        ),
        end=CLOSE,
        system=FR,
    ),
    Scenario(
        "fr_rephrase",
        "fr",
        (
            say(
                "Comment activer la double authentification sur mon compte ?",
                "Vous pouvez changer votre mot de passe dans Paramètres > Sécurité.",
            ),
            say(
                "Comment est-ce que j'active la double authentification pour sécuriser mon compte ?",
                "Allez dans Paramètres > Sécurité > Double authentification, choisissez l'application ou le SMS, puis saisissez le code reçu pour confirmer.",
                REPHRASE,
            ),
        ),
        end_expect=SILENCE,
        system=FR,
    ),
    Scenario(
        "fr_correction",
        "fr",
        (
            say(
                "Quel temps fera-t-il à Lyon demain ?",
                "Demain à Marseille, il fera ensoleillé avec 24 degrés l'après-midi.",
            ),
            say(
                "Non, je voulais dire Lyon, pas Marseille.",
                "Pardon ! Demain à Lyon, le temps sera nuageux avec quelques averses et 17 degrés au maximum.",
                CORRECTION,
            ),
            say("Merci.", "Je vous en prie !"),
        ),
        mode=SESSION,
        end=CLOSE,
        system=FR,
    ),
    Scenario(
        "fr_correction_asked",
        "fr",
        (
            say(
                "Donne-moi la recette de la quiche lorraine.",
                "Pour une tarte Tatin, caramélisez 100 g de sucre, ajoutez 6 pommes en quartiers, recouvrez de pâte et faites cuire 35 minutes à 200 °C.",
            ),
            say(
                "Ce n'est pas ce que j'ai demandé, je voulais la quiche.",
                "Désolé ! Quiche lorraine : étalez une pâte brisée, ajoutez 200 g de lardons, versez 3 œufs battus avec 25 cl de crème et de la muscade, puis faites cuire 35 minutes à 180 °C.",
                CORRECTION,
            ),
        ),
        end=CLOSE,
        system=FR,
    ),
    Scenario(
        "fr_negative",
        "fr",
        (
            say("La tour Eiffel mesure combien de mètres ?", "La tour Eiffel mesure 180 mètres."),
            say(
                "C'est faux, elle fait plus de 300 mètres.",
                "Vous avez raison, pardon : avec ses antennes, la tour Eiffel mesure environ 330 mètres.",
                NEGATIVE,
            ),
            say("D'accord, merci.", "Avec plaisir !"),
        ),
        end=CLOSE,
        system=FR,
    ),
    Scenario(
        "fr_repeat",
        "fr",
        (
            say(
                "Comment supprimer mon compte ?",
                "Vous pouvez modifier votre photo de profil dans les paramètres du compte.",
            ),
            say(
                "Comment je fais pour supprimer mon compte ?",
                "Dans les paramètres, vous pouvez aussi gérer vos notifications.",
                REPHRASE,
            ),
            say(
                "Je veux supprimer mon compte, comment faire ?",
                "Pour supprimer votre compte, allez dans Paramètres > Compte > Supprimer le compte et confirmez avec votre mot de passe.",
                REPEAT,
            ),
        ),
        mode=SESSION,
        end_expect=SILENCE,
        system=FR,
    ),
    Scenario(
        "fr_loop",
        "fr",
        (
            say(
                "Mon wifi se coupe tout le temps, que faire ?",
                "Redémarrez votre box en la débranchant pendant 30 secondes, puis vérifiez que le voyant internet est bien allumé en blanc.",
            ),
            say(
                "Je l'ai déjà redémarrée trois fois aujourd'hui.",
                "Redémarrez votre box en la débranchant pendant 30 secondes, puis vérifiez que le voyant internet est bien allumé en blanc.",
                LOOP,
            ),
            say(
                "Et si le problème vient de mon ordinateur ?",
                "Redémarrez votre box en la débranchant pendant trente secondes, puis vérifiez que le voyant internet est bien allumé en blanc.",
                LOOP,
            ),
        ),
        end=CLOSE,
        system=FR,
    ),
    Scenario(
        "fr_stream_abandon",
        "fr",
        (
            say(
                "Explique-moi la photosynthèse.",
                "La photosynthèse permet aux plantes de transformer la lumière, l'eau et le CO2 en sucres, en libérant de l'oxygène.",
            ),
            abandon(
                "Détaille toutes les étapes de la phase claire et du cycle de Calvin.",
                "Bien sûr ! La phase claire se déroule dans les membranes des thylakoïdes. Tout d'abord, les photons sont absorbés par",
            ),
        ),
        end=CLOSE,
        system=FR,
    ),
    Scenario(
        "fr_give_up",
        "fr",
        (
            say(
                "Pourquoi mon application bancaire ne s'ouvre plus ?",
                "Essayez de fermer complètement l'application puis de la relancer.",
            ),
            say(
                "Ça ne marche toujours pas.",
                "Vérifiez qu'une mise à jour est disponible dans le store et installez-la.",
            ),
            say(
                "Laisse tomber, j'appellerai ma banque.",
                "D'accord, votre conseiller pourra vérifier votre accès directement.",
                GIVE_UP,
            ),
        ),
        mode=SESSION,
        system=FR,
    ),
    Scenario(
        "fr_thumbs_down",
        "fr",
        (
            say("Quelle est la capitale du Canada ?", "La capitale du Canada est Toronto."),
            feedback(S.FEEDBACK_THUMBS_DOWN, NEGATIVE),
        ),
        end=CLOSE,
        system=FR,
    ),
]

SPANISH = [
    Scenario(
        "es_happy_followups",
        "es",
        (
            say(
                "¿Cómo puedo cambiar el plan de mi tarifa móvil?",
                "Entra en la app, ve a 'Mi tarifa' y pulsa 'Cambiar plan'. El cambio se aplica desde el siguiente ciclo de facturación.",
            ),
            say(
                "¿Y se puede hacer el cambio a mitad de mes?",
                "Sí, pero el nuevo plan empieza a contar desde el próximo ciclo; hasta entonces mantienes las condiciones actuales.",
            ),
            say(
                "¿Tiene algún coste cambiar de plan?",
                "No, cambiar de plan es gratis una vez al mes. Un segundo cambio en el mismo mes cuesta 5 euros.",
            ),
            say("Perfecto, muchas gracias.", "¡De nada! Si necesitas algo más, aquí estoy."),
        ),
        system=ES,
        tags=HARD,
        note="preguntas de seguimiento sobre el mismo tema no son reformulaciones",
    ),
    Scenario(
        "es_happy_stateless",
        "es",
        (
            say(
                "Dame una receta fácil de gazpacho.",
                "Tritura 1 kg de tomates maduros, medio pepino, medio pimiento verde, un diente de ajo, aceite de oliva, vinagre y sal. Enfríalo al menos una hora antes de servir.",
            ),
            say(
                "¿Cuánto tiempo dura en la nevera?",
                "Bien tapado aguanta dos o tres días en la nevera; remuévelo antes de servirlo.",
            ),
        ),
        mode=STATELESS,
        system=ES,
    ),
    Scenario(
        "es_happy_negation",
        "es",
        (
            say(
                "¿Hay que pagar algo por devolver un pedido?",
                "No, las devoluciones son gratuitas durante 30 días. ¿Quieres que te explique cómo iniciar la devolución?",
            ),
            say(
                "No hace falta, gracias. ¿Cuánto tarda el reembolso?",
                "El reembolso llega en un plazo de 5 a 7 días hábiles desde que recibimos el paquete.",
            ),
            feedback(S.FEEDBACK_THUMBS_UP),
        ),
        end=CLOSE,
        system=ES,
        tags=HARD,
        note="un 'no' que responde a una pregunta no es una corrección",
    ),
    Scenario(
        "es_regenerate",
        "es",
        (
            say(
                "Escribe un eslogan para una cafetería en Sevilla.",
                "Café del bueno, en el corazón de Sevilla.",
            ),
            regenerate("Sevilla tiene un color especial, y nuestro café, un sabor especial."),
            say(
                "Me quedo con el segundo, gracias.",
                "¡Buena elección! Mucha suerte con la cafetería.",
            ),
        ),
        mode=SESSION,
        end=CLOSE,
        system=ES,
    ),
    Scenario(
        "es_edit",
        "es",
        (
            say(
                "Necesito ideas para una cena.",
                "¡Claro! ¿Para cuántas personas es y hay alguna restricción alimentaria?",
            ),
            say(
                "Para seis personas.",
                "Para seis personas: una paella de marisco, una ensalada de tomate con ventresca y una tarta de queso de postre.",
            ),
            edit(
                "Para seis personas, dos son vegetarianas.",
                "Para seis con dos vegetarianos: una paella de verduras para todos, pimientos del piquillo rellenos de queso de cabra y una tarta de queso de postre.",
            ),
        ),
        end=CLOSE,
        system=ES,
    ),
    Scenario(
        "es_retry",
        "es",
        (
            say(
                "¿Cuántos litros son un galón?",
                "Un galón estadounidense equivale a unos 3,79 litros.",
            ),
            error("¿Y una pinta?"),
            retry(
                "Una pinta estadounidense son unos 0,47 litros; la pinta británica, unos 0,57 litros."
            ),
            say("Gracias, muy útil.", "¡De nada!"),
        ),
        system=ES,
    ),
    Scenario(
        "es_rephrase",
        "es",
        (
            say(
                "¿Cómo puedo descargar mis facturas?",
                "Puedes consultar el importe de tu última factura en la pantalla de inicio.",
            ),
            say(
                "¿Cómo puedo descargar todas mis facturas en PDF?",
                "En 'Facturación' > 'Mis facturas' pulsa el icono de descarga de cada factura, o 'Descargar todas' para obtener un ZIP con los PDF.",
                REPHRASE,
            ),
        ),
        mode=SESSION,
        end_expect=SILENCE,
        system=ES,
    ),
    Scenario(
        "es_correction",
        "es",
        (
            say(
                "¿A qué hora sale el próximo autobús a Valencia?",
                "El próximo tren a Valencia sale a las 16:10 desde la estación de Atocha.",
            ),
            say(
                "No, me refería al autobús, no al tren.",
                "Perdón: el próximo autobús a Valencia sale a las 16:30 desde la Estación Sur de Méndez Álvaro.",
                CORRECTION,
            ),
            say("Vale, gracias.", "¡Buen viaje!"),
        ),
        end=CLOSE,
        system=ES,
    ),
    Scenario(
        "es_correction_stateless",
        "es",
        (
            say(
                "¿Cuál es la capital de Nueva Zelanda?",
                "La ciudad más grande de Nueva Zelanda es Auckland, con 1,7 millones de habitantes.",
            ),
            say(
                "Eso no es lo que pregunté, quería saber la capital.",
                "Perdona: la capital de Nueva Zelanda es Wellington.",
                CORRECTION,
            ),
        ),
        mode=STATELESS,
        end=CLOSE,
        system=ES,
    ),
    Scenario(
        "es_negative",
        "es",
        (
            say("¿Cuántos días tiene febrero en 2024?", "Febrero de 2024 tiene 28 días."),
            say(
                "Eso está mal, 2024 es bisiesto.",
                "Tienes razón, perdona: 2024 es bisiesto, así que febrero tiene 29 días.",
                NEGATIVE,
            ),
        ),
        mode=SESSION,
        end=CLOSE,
        system=ES,
    ),
    Scenario(
        "es_repeat",
        "es",
        (
            say(
                "¿Cómo cambio la contraseña del wifi?",
                "Puedes ver los dispositivos conectados a tu red en la app del router.",
            ),
            say(
                "¿Cómo puedo cambiar la contraseña del wifi?",
                "El router tiene un botón WPS para conectar dispositivos sin contraseña.",
                REPHRASE,
            ),
            say(
                "Quiero cambiar la contraseña del wifi, ¿cómo se hace?",
                "Entra en 192.168.1.1 con los datos de la etiqueta del router, ve a 'Wi-Fi' > 'Seguridad', escribe la nueva contraseña y guarda.",
                REPEAT,
            ),
        ),
        end=CLOSE,
        system=ES,
    ),
    Scenario(
        "es_loop",
        "es",
        (
            say(
                "Mi pedido llegó roto, ¿qué hago?",
                "Lamentamos lo ocurrido. Por favor, envíanos una foto del producto dañado a través del formulario de contacto y te responderemos en 48 horas.",
            ),
            say(
                "Ya envié las fotos hace una semana y nadie me ha contestado.",
                "Lamentamos lo ocurrido. Por favor, envíanos una foto del producto dañado a través del formulario de contacto y te responderemos en 48 horas.",
                LOOP,
            ),
            say(
                "¿Puedo pedir directamente un reembolso?",
                "Lamentamos mucho lo ocurrido. Por favor, envíanos una foto del producto dañado mediante el formulario de contacto y te responderemos en 48 horas.",
                LOOP,
            ),
        ),
        mode=SESSION,
        end=CLOSE,
        system=ES,
    ),
    Scenario(
        "es_stream_abandon",
        "es",
        (
            say(
                "¿Qué es la inflación?",
                "La inflación es la subida generalizada de los precios durante un periodo, lo que reduce el poder adquisitivo del dinero.",
            ),
            abandon(
                "Explícame con detalle todas las causas de la inflación y sus teorías económicas.",
                "Claro. Para entender las causas de la inflación hay que distinguir varias escuelas de pensamiento. En primer lugar, la teoría cuantitativa del dinero sostiene que",
            ),
            say(
                "Mejor dame solo un ejemplo sencillo.",
                "Si un café costaba 1 euro el año pasado y hoy cuesta 1,10 euros sin que haya cambiado nada, los precios subieron un 10 %: eso es inflación.",
            ),
        ),
        end=CLOSE,
        system=ES,
    ),
    Scenario(
        "es_give_up",
        "es",
        (
            say(
                "¿Por qué mi móvil se calienta tanto?",
                "Puede deberse a aplicaciones en segundo plano; ciérralas y baja el brillo de la pantalla.",
            ),
            say(
                "Ya lo hice y sigue igual.",
                "Prueba a reiniciar el móvil y a comprobar si hay actualizaciones del sistema.",
            ),
            say(
                "Olvídalo, lo llevaré a la tienda.",
                "De acuerdo, en la tienda podrán revisar la batería y el sistema.",
                GIVE_UP,
            ),
        ),
        system=ES,
    ),
    Scenario(
        "es_low_rating",
        "es",
        (
            say(
                "Recomiéndame un libro de ciencia ficción.",
                "Te recomiendo 'Cien años de soledad' de Gabriel García Márquez.",
            ),
            feedback(0.1, NEGATIVE),
        ),
        end_expect=SILENCE,
        system=ES,
    ),
]

SCENARIOS: list[Scenario] = ENGLISH + GERMAN + FRENCH + SPANISH
