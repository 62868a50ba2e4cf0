"""What a voice preview says: a short introduction in the voice's own language.

A German eSpeak voice reading an English sentence shows nothing of how it sounds in
German, so the languages most voices speak have their own text. Only the English one says
the voice's name: names are English ("French (France)"), and read by a French voice inside
a French sentence they turn into noise. Other languages fall back to the English text and
leave the language to the TTS service (detection among what the voice speaks).
"""

from __future__ import annotations

ENGLISH = "Hello! This is {name}, one of the voices you can use for your project."
_TEXTS = {
    "en": ENGLISH,
    "de": "Hallo! Dies ist eine der Stimmen, die Sie für Ihr Projekt verwenden können.",
    "fr": "Bonjour ! Voici l'une des voix que vous pouvez utiliser pour votre projet.",
    "es": "¡Hola! Esta es una de las voces que puedes usar en tu proyecto.",
    "it": "Ciao! Questa è una delle voci che puoi usare per il tuo progetto.",
    "pt": "Olá! Esta é uma das vozes que você pode usar no seu projeto.",
    "nl": "Hallo! Dit is een van de stemmen die je voor je project kunt gebruiken.",
    "sv": "Hej! Det här är en av rösterna du kan använda i ditt projekt.",
    "da": "Hej! Det her er en af de stemmer, du kan bruge i dit projekt.",
    "nb": "Hei! Dette er en av stemmene du kan bruke i prosjektet ditt.",
    "fi": "Hei! Tämä on yksi äänistä, joita voit käyttää projektissasi.",
    "pl": "Cześć! To jeden z głosów, których możesz użyć w swoim projekcie.",
    "cs": "Ahoj! Toto je jeden z hlasů, které můžete použít ve svém projektu.",
    "ru": "Здравствуйте! Это один из голосов, которые вы можете использовать в своём проекте.",
    "tr": "Merhaba! Bu, projenizde kullanabileceğiniz seslerden biri.",
    "ja": "こんにちは。これは、あなたのプロジェクトで使える声のひとつです。",
    "zh": "你好！这是你可以在项目中使用的声音之一。",  # noqa: RUF001 - Chinese punctuation on purpose
    "ko": "안녕하세요! 이것은 프로젝트에 사용할 수 있는 목소리 중 하나입니다.",
    "hi": "नमस्ते! यह उन आवाज़ों में से एक है जिनका उपयोग आप अपने प्रोजेक्ट में कर सकते हैं।",
    "ar": "مرحبا! هذا أحد الأصوات التي يمكنك استخدامها في مشروعك.",
}


def preview_text(language: str, name: str) -> tuple[str, str]:
    """(text, language to request) for a voice whose language is `language`; "" = let the service decide."""
    code = language.replace("_", "-").split("-")[0].lower()
    if code in _TEXTS:
        return _TEXTS[code].replace("{name}", name), code
    return ENGLISH.replace("{name}", name), ""
