// The TypeScript SDK's platform clients, each made as docs/platforms.md says to point it at
// tapedeck, for the conformance table (platforms.test.mjs): name (the table's platform name)
// -> (tapedeck's address, the client options the runner sets) -> a client.
//
// Every credential is fake: replay checks none. The platform packages are built on the
// @anthropic-ai/sdk package.json pins (whatever CONFORMANCE_SDK says), so that is the release
// their expectations' `releases` ranges are matched against.
import { AnthropicAws } from '@anthropic-ai/aws-sdk';
import { AnthropicBedrock, AnthropicBedrockMantle } from '@anthropic-ai/bedrock-sdk';
import { AnthropicFoundry } from '@anthropic-ai/foundry-sdk';
import { VERSION } from '@anthropic-ai/sdk/version';
import { AnthropicVertex } from '@anthropic-ai/vertex-sdk';

export { VERSION };

// Static fake AWS keys: the SigV4 clients sign with them and never look for real ones.
const AWS = { awsAccessKey: 'AKIDCONFORMANCE', awsSecretAccessKey: 'conformance-secret', awsRegion: 'us-east-1' };
// The Vertex client asks google-auth for its headers on every request (`accessToken` does not
// skip it): a stand-in AuthClient gives a fixed bearer token, with no network.
const GOOGLE_AUTH = { projectId: 'p', getRequestHeaders: async () => new Headers({ authorization: 'Bearer conformance-token' }) };

/** The TypeScript platform clients the table runs through, besides the first-party one (the
 * table's `google_cloud` has no TypeScript client). */
export const PLATFORM_CLIENTS = {
  bedrock: (base, options) => new AnthropicBedrock({
    baseURL: base, awsAccessKey: AWS.awsAccessKey, awsSecretKey: AWS.awsSecretAccessKey, awsRegion: AWS.awsRegion, ...options,
  }),
  vertex: (base, options) => new AnthropicVertex({ baseURL: base, region: 'us-east5', projectId: 'p', authClient: GOOGLE_AUTH, ...options }),
  foundry: (base, options) => new AnthropicFoundry({ baseURL: `${base}/anthropic/`, apiKey: 'conformance-foundry-key', ...options }),
  mantle: (base, options) => new AnthropicBedrockMantle({ baseURL: `${base}/anthropic`, ...AWS, ...options }),
  aws: (base, options) => new AnthropicAws({ baseURL: base, workspaceId: 'wrk', ...AWS, ...options }),
};
