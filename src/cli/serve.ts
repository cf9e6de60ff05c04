export const help = 'fraudscore serve — not implemented yet';

export async function run(_argv: string[]): Promise<void> {
  throw new Error('fraudscore serve is not implemented yet');
}
