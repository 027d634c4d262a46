// The TypeScript Claude Agent SDK asked one prompt, as a program built on it asks: query()
// with the working directory, to the end. Prints the result's text (or what went wrong)
// and exits 0, or 1 when the SDK reports an error. The variables of $CLAUDE_CLI_ENV (a JSON
// object) go to the Claude Code it starts. Usage: node agent_sdk.mjs PROMPT
import { query } from "@anthropic-ai/claude-agent-sdk";

const prompt = process.argv[2];
const env = { ...process.env, ...JSON.parse(process.env.CLAUDE_CLI_ENV || "{}") };
delete env.CLAUDE_CLI_ENV;
let result;
try {
  for await (const message of query({ prompt, options: { cwd: process.cwd(), env } })) {
    if (message.type === "result") result = message;
  }
} catch (error) {
  console.log(String(error?.message ?? error));
  process.exit(1);
}
if (result === undefined) {
  console.log("no result");
  process.exit(2);
}
console.log(result.result ?? (result.errors ?? []).join("\n"));
process.exit(result.is_error ? 1 : 0);
