export const help = 'fraudscore models — not implemented yet';

export async function run(_argv: string[]): Promise<void> {
  throw new Error('fraudscore models is not implemented yet');
}
