Console.WriteLine("jetpack");
