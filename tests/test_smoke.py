import anthropic
import pytest


def test_hello_stream(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        max_tokens=256, messages=[{"role": "user", "content": "Hello"}], model="claude-sonnet-4-5"
    ) as stream:
        assert "".join(stream.text_stream) == "Hello!"


@pytest.mark.anyio
async def test_hello_async(async_client: anthropic.AsyncAnthropic) -> None:
    async with async_client.messages.stream(
        max_tokens=256, messages=[{"role": "user", "content": "Hello"}], model="claude-sonnet-4-5"
    ) as stream:
        msg = await stream.get_final_message()
    assert msg.content[0].text == "Hello!"
