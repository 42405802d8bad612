/** One instruction of a Dockerfile. */
export interface DockerInstruction {
  /** The instruction, upper case: FROM, RUN, COPY... */
  keyword: string;
  /** The rest of the instruction, continuation lines joined. */
  args: string;
}

/** A Dockerfile's instructions, continuation lines joined, comments dropped. */
export function parseDockerfile(text: string): DockerInstruction[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

/** The stages of a multi-stage Dockerfile, each starting with its FROM. */
export function splitStages(instructions: DockerInstruction[]): DockerInstruction[][] {
  const stages: DockerInstruction[][] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      stages.push([]);
    }
    stages.at(-1)?.push(instruction);
  }

  return stages;
}

/** The exec-form command of the last stage's HEALTHCHECK, e.g. `["node", "-e", "..."]`. */
export function findHealthcheckCommand(instructions: DockerInstruction[]): string[] {
  const healthcheck = splitStages(instructions)
    .at(-1)
    ?.find((step) => step.keyword === 'HEALTHCHECK');
  const json = /\bCMD (\[.*\])$/.exec(healthcheck?.args ?? '')?.[1];
  if (!json) {
    throw new Error('the Dockerfile has no exec-form HEALTHCHECK CMD');
  }

  return JSON.parse(json) as string[];
}
